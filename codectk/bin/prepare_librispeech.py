"""Stage 1 helper: a LibriSpeech-layout corpus on disk -> a Kaldi data dir.

Usage::

    python -m codectk.bin.prepare_librispeech --corpus_dir corpus --parts train-clean-100 \\
        --out_dir data/all
"""

from __future__ import annotations

import argparse
import sys

from codectk.bin.common import run
from codectk.corpora.librispeech import prepare_librispeech_dir
from codectk.log import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus_dir", required=True, help="folder holding LibriSpeech/")
    parser.add_argument("--parts", nargs="+", required=True, help="e.g. train-clean-100 dev-clean")
    parser.add_argument("--out_dir", required=True, help="Kaldi data dir to write")
    args = parser.parse_args(argv)
    setup_logging()
    prepare_librispeech_dir(args.corpus_dir, args.parts, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
