"""Check or repair a Kaldi data directory from the command line.

``utils/validate_data_dir.sh`` and ``utils/fix_data_dir.sh`` call this module::

    python -m codectk.bin.datadir validate [--no-text] [--no-feats] data/train
    python -m codectk.bin.datadir fix data/train

``validate`` prints each problem to stderr, followed by the offending line(s) of a file
when the problem names ``file:line``, and exits 1; a valid directory prints
``data/train: valid (<n> utterances, <m> speakers)`` and exits 0. ``fix`` sorts the
files, drops utterances missing from any utterance-keyed file, regenerates ``spk2utt``
and prints how many utterances it kept and dropped; it exits 1 when the directory
cannot be fixed. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from codectk.bin.common import run
from codectk.io.datadir import DataDirError, fix_data_dir, read_scp, validate_data_dir

_LOCATION = re.compile(r"^(?P<path>.+?):(?P<lineno>[0-9]+): ")
_MAX_SHOWN_CHARS = 200


def offending_lines(problem: str) -> list[tuple[str, int, str]]:
    """The file lines a problem message points at.

    A problem naming ``path:lineno:`` points at that line; an ordering problem
    (``not sorted``) also at the line before it, so that both lines of the unsorted
    pair are shown.

    Args:
        problem (str): one message from :func:`codectk.io.datadir.validate_data_dir`.

    Returns:
        list: ``(path, lineno, text)`` for each line that exists, in file order; empty
        when the message names no line or the file cannot be read.
    """
    match = _LOCATION.match(problem)
    if match is None:
        return []
    path, lineno = match["path"], int(match["lineno"])
    wanted = {lineno - 1, lineno} if "not sorted" in problem else {lineno}
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            found = [(path, n, line.rstrip("\r\n")) for n, line in enumerate(f, 1) if n in wanted]
    except OSError:
        return []
    return found


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + "..."


def validate(data_dir: str, no_text: bool = False) -> int:
    """Validate ``data_dir`` and report on stdout (valid) or stderr (problems).

    Args:
        data_dir (str): the data directory.
        no_text (bool): do not require a ``text`` file.

    Returns:
        int: exit status, 0 when valid, 1 otherwise.
    """
    problems = validate_data_dir(data_dir, no_text=no_text)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
            for path, lineno, text in offending_lines(problem):
                print(f"    {path}:{lineno}: {_shorten(text)}", file=sys.stderr)
        print(f"{data_dir}: invalid ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    d = Path(data_dir)
    num_utts = len(read_scp(d / "wav.scp"))
    num_spks = len(set(read_scp(d / "utt2spk").values()))
    print(f"{data_dir}: valid ({num_utts} utterances, {num_spks} speakers)")
    return 0


def fix(data_dir: str) -> int:
    """Fix ``data_dir`` in place and print the kept/dropped utterance counts.

    Args:
        data_dir (str): the data directory.

    Returns:
        int: exit status, 0 when fixed, 1 when it cannot be fixed.
    """
    if not Path(data_dir).is_dir():
        print(f"{data_dir}: not a directory", file=sys.stderr)
        return 1
    try:
        counts = fix_data_dir(data_dir)
    except DataDirError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    msg = f"{data_dir}: kept {counts['kept']} utterances, dropped {counts['dropped']}"
    if counts["dropped"]:
        msg += f" (their ids are in {Path(data_dir) / '.backup' / 'dropped'})"
    print(msg)
    return 0


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser (sub-commands ``validate`` and ``fix``)."""
    parser = argparse.ArgumentParser(
        prog="python -m codectk.bin.datadir", description="Check or repair a data directory."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a data directory; exit 1 if it has problems")
    p.add_argument("--no-text", action="store_true", help="do not require a text file")
    p.add_argument(
        "--no-feats",
        action="store_true",
        help="accepted for Kaldi compatibility (codec data dirs have no feats.scp)",
    )
    p.add_argument("data_dir", help="the data directory")
    p = sub.add_parser("fix", help="sort, keep utterances common to all files, remake spk2utt")
    p.add_argument("data_dir", help="the data directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (argparse exits 2 on usage errors)."""
    args = get_parser().parse_args(argv)
    if args.command == "validate":
        return validate(args.data_dir, no_text=args.no_text)
    return fix(args.data_dir)


if __name__ == "__main__":
    sys.exit(run(main))
