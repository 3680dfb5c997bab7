"""Combine Kaldi data dirs into one (as Kaldi's ``utils/combine_data.sh``).

Usage::

    python -m codectk.bin.combine_data data/train-960 \\
        data/train-clean-100 data/train-clean-360 data/train-other-500

Every source must be a valid data dir and no utterance id may occur in two of them.
Utterance-keyed files (``wav.scp``, ``utt2spk``, ``utt2num_samples``, ...) are joined;
a file some sources lack is left out, with a warning, except ``text``, where the
utterances of those sources get an empty transcript (a codec needs no text, and a
partial ``text`` would make ``fix_data_dir`` drop their audio). ``spk2gender`` is joined
(a speaker with two genders is an error); ``spk2utt`` is made anew. The destination is
written under a temporary name, validated, and then replaces ``<dest>`` whole.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.corpora.common import atomic_dir
from codectk.io.datadir import (
    UTT_KEYED,
    DataDirError,
    read_scp,
    utt2spk_to_spk2utt,
    validate_data_dir,
    write_scp,
)
from codectk.log import setup_logging

log = logging.getLogger("codectk.combine_data")


def combine_data(out_dir: str | os.PathLike, src_dirs: Sequence[str | os.PathLike]) -> int:
    """Write the union of ``src_dirs`` to ``out_dir``.

    Args:
        out_dir: the destination data dir (replaced if it exists; must not be a source).
        src_dirs: source data dirs.

    Returns:
        int: number of utterances written.

    Raises:
        DataDirError: no source, an invalid source, an utterance id in two sources, a
            speaker with two genders, or the destination among the sources.
    """
    out = Path(out_dir)
    srcs = [Path(d) for d in src_dirs]
    if not srcs:
        raise DataDirError(f"{out}: no source data dir to combine")
    if any(s.resolve() == out.resolve() for s in srcs):
        raise DataDirError(f"{out}: the destination is also a source")
    for s in srcs:
        problems = validate_data_dir(s)
        if problems:
            raise DataDirError(f"{s}: invalid source data dir: " + "; ".join(problems))
    owner: dict[str, Path] = {}
    tables: dict[str, dict[str, str]] = {}
    for s in srcs:
        for utt in read_scp(s / "wav.scp"):
            if utt in owner:
                raise DataDirError(f"utterance {utt!r} is in both {owner[utt]} and {s}")
            owner[utt] = s
    for name in UTT_KEYED:
        have = [s for s in srcs if (s / name).is_file()]
        if not have:
            continue
        if len(have) < len(srcs) and name != "text":
            log.warning(
                "%s: not in %s: left out of %s",
                name,
                [str(s) for s in srcs if s not in have],
                out,
            )
            continue
        table: dict[str, str] = {}
        for s in srcs:
            if s in have:
                table.update(read_scp(s / name, allow_empty_value=name == "text"))
            else:
                table.update({u: "" for u, o in owner.items() if o == s})
                log.warning("%s has no text: its utterances get an empty one in %s", s, out)
        tables[name] = table
    genders: dict[str, str] = {}
    for s in srcs:
        if (s / "spk2gender").is_file():
            for spk, g in read_scp(s / "spk2gender").items():
                if genders.setdefault(spk, g) != g:
                    raise DataDirError(
                        f"{s / 'spk2gender'}: speaker {spk!r} is {g!r} here, "
                        f"{genders[spk]!r} before"
                    )
    with atomic_dir(out) as tmp:
        for name, table in tables.items():
            write_scp(tmp / name, table)
        utt2spk = tables["utt2spk"]
        spk2utt = utt2spk_to_spk2utt(utt2spk)
        write_scp(tmp / "spk2utt", {k: " ".join(v) for k, v in spk2utt.items()})
        if genders:
            speakers = set(utt2spk.values())
            write_scp(tmp / "spk2gender", {k: v for k, v in genders.items() if k in speakers})
        problems = validate_data_dir(tmp)
        if problems:
            raise DataDirError(f"{out}: combined data dir is invalid: " + "; ".join(problems))
    log.info(
        "combined %s -> %s: %d utterances, %d speakers",
        " + ".join(map(str, srcs)),
        out,
        len(owner),
        len(set(tables["utt2spk"].values())),
    )
    return len(owner)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (errors raise :class:`DataDirError`)."""
    p = parser(__doc__)
    p.add_argument("dest", help="the data dir to write")
    p.add_argument("srcs", nargs="+", help="the data dirs to combine")
    args = p.parse_args(argv)
    setup_logging()
    combine_data(args.dest, args.srcs)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
