"""Stage 1: a speech corpus in its official layout -> Kaldi data dirs (lhotse underneath).

Usage::

    python -m codectk.bin.prepare_corpus librispeech --corpus_dir $LIBRISPEECH --out_dir data \\
        [--sets train-clean-100 dev-clean test-clean] [--download true] [--nj 4]
    python -m codectk.bin.prepare_corpus libritts --corpus_dir $LIBRITTS --out_dir data \\
        [--sets train-960 dev-clean test-clean] [--variant libritts|libritts_r] [--download true]
    python -m codectk.bin.prepare_corpus vctk --corpus_dir $VCTK --out_dir data \\
        [--mic mic1|mic2] [--split true] [--download true]

LibriSpeech and LibriTTS: ``--sets`` names parts (``train-clean-100``, ``dev-clean``, ...)
and unions (``train-clean-460``, ``train-960``); each part is written to
``<out_dir>/<part>`` and each union, combined from its parts, to ``<out_dir>/<union>``.
Without ``--sets``: every part on disk. VCTK: ``<out_dir>/all`` and, with ``--split
true``, the held-out speaker split ``<out_dir>/{train,valid,test}``.

With ``--download true`` the parts (or the VCTK corpus) missing from ``--corpus_dir`` are
downloaded with lhotse first; what is on disk never touches the network.

Exit status: 0 every set written; 1 a set could not be written (the others are, and
the warnings name the files) or an error (one ``ERROR:`` line naming the file); 2 usage
error.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from codectk.bin.common import parser, run, str2bool
from codectk.corpora.common import LIBRI_PARTS, LIBRI_UNIONS, CorpusError
from codectk.io.datadir import combine_data
from codectk.log import setup_logging

log = logging.getLogger("codectk.prepare_corpus")
CORPORA = ("librispeech", "libritts", "vctk")


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser, one sub-command per corpus."""
    p = parser(__doc__)
    sub = p.add_subparsers(dest="corpus", required=True, metavar="{" + ",".join(CORPORA) + "}")
    for corpus in CORPORA:
        s = sub.add_parser(corpus, help=f"prepare {corpus}")
        s.add_argument("--corpus_dir", required=True, help="the corpus root (see the module help)")
        s.add_argument("--out_dir", required=True, help="parent folder of the data dirs")
        s.add_argument("--nj", type=int, default=1, help="parallel header reads")
        s.add_argument(
            "--download",
            type=str2bool,
            default=False,
            help="download what is missing with lhotse (true/false)",
        )
        if corpus == "vctk":
            s.add_argument("--mic", choices=("mic1", "mic2"), default="mic1", help="microphone")
            s.add_argument(
                "--split",
                type=str2bool,
                default=True,
                help="also write the held-out speaker split train/valid/test (true/false)",
            )
        else:
            s.add_argument(
                "--sets",
                nargs="+",
                default=None,
                choices=LIBRI_PARTS + tuple(LIBRI_UNIONS),
                metavar="SET",
                help="parts and unions (default: every part on disk)",
            )
        if corpus == "libritts":
            s.add_argument(
                "--variant",
                choices=("libritts", "libritts_r"),
                default=None,
                help="LibriTTS or LibriTTS-R (default: the one under --corpus_dir)",
            )
    return p


def prepare_libri(args: argparse.Namespace) -> list[str]:
    """LibriSpeech or LibriTTS: download, prepare the parts, combine the unions.

    Returns:
        list[str]: the requested sets that could not be written.
    """
    if args.corpus == "librispeech":
        from codectk.corpora.librispeech import download_librispeech as download
        from codectk.corpora.librispeech import prepare_librispeech as prepare
    else:
        from codectk.corpora.libritts import download_libritts, prepare_libritts

        download = functools.partial(download_libritts, variant=args.variant)
        prepare = functools.partial(prepare_libritts, variant=args.variant)
    sets = args.sets
    parts = None
    if sets is not None:
        parts = list(dict.fromkeys(p for s in sets for p in LIBRI_UNIONS.get(s, (s,))))
    if args.download:
        if parts is None:
            raise CorpusError("--download true needs --sets: which parts to download")
        download(args.corpus_dir, parts)
    written = prepare(args.corpus_dir, args.out_dir, parts, args.nj)
    failed = [s for s in sets or [] if s not in LIBRI_UNIONS and s not in written]

    for union in [s for s in sets or [] if s in LIBRI_UNIONS]:
        missing = [p for p in LIBRI_UNIONS[union] if p not in written]
        if missing:
            log.error("%s needs %s, which could not be prepared: not written", union, missing)
            failed.append(union)
            continue
        combine_data(
            Path(args.out_dir) / union, [Path(args.out_dir) / p for p in LIBRI_UNIONS[union]]
        )
    return failed


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (errors raise, see the module help)."""
    args = get_parser().parse_args(argv)
    setup_logging()
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")  # lhotse's progress bars, in log files
    if args.corpus == "vctk":
        from codectk.corpora.vctk import download_vctk, prepare_vctk

        if args.download:
            download_vctk(args.corpus_dir)
        prepare_vctk(args.corpus_dir, args.out_dir, args.mic, args.nj, args.split)
        return 0
    failed = prepare_libri(args)
    if failed:
        log.error("not written: %s (see the warnings above)", " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
