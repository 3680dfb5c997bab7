"""The ``codectk`` command: ``codectk <step> [options]`` runs ``codectk.bin.<step>``.

Steps: prepare_corpus, prepare_librispeech, combine_data, split_by_speaker, datadir,
dump_wav, filter_length, collect_stats, train, decode, score, pack, compare_scores.
"""

from __future__ import annotations

import importlib
import sys

from codectk.bin.common import run

STEPS = [
    "prepare_corpus",
    "prepare_librispeech",
    "combine_data",
    "split_by_speaker",
    "datadir",
    "dump_wav",
    "filter_length",
    "collect_stats",
    "train",
    "decode",
    "score",
    "pack",
    "compare_scores",
]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    step = argv[0]
    if step not in STEPS:
        print(f"codectk: unknown step {step!r}; choose one of {STEPS}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"codectk.bin.{step}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(run(main))
