"""Split a Kaldi data dir into disjoint speaker sets (gender-balanced when known).

Usage::

    python -m codectk.bin.split_by_speaker data/all data/test:6 data/valid:4 data/train:rest

Each ``out_dir:N`` takes N speakers (``rest``: all remaining); speakers are taken in a
deterministic order (sorted ids, shuffled with ``--seed``), alternating genders when
``spk2gender`` exists, so small test sets hold both.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path

from codectk.bin.common import run
from codectk.io.datadir import read_scp, subset_data_dir, utt2spk_to_spk2utt
from codectk.log import setup_logging


def split_speakers(
    spk2gender: dict[str, str], speakers: list[str], sizes: list[int | None], seed: int
) -> list[list[str]]:
    """Assign speakers to sets of ``sizes`` (None = the rest), alternating genders."""
    rng = random.Random(seed)
    pools: dict[str, list[str]] = {}
    for spk in sorted(speakers):
        pools.setdefault(spk2gender.get(spk, "?"), []).append(spk)
    for pool in pools.values():
        rng.shuffle(pool)
    order: list[str] = []
    keys = sorted(pools)
    while any(pools.values()):
        for g in keys:
            if pools[g]:
                order.append(pools[g].pop())
    out, start = [], 0
    for size in sizes:
        end = len(order) if size is None else start + size
        if end > len(order):
            raise ValueError(
                f"asked for {sum(s or 0 for s in sizes)} speakers, only {len(order)} exist"
            )
        out.append(sorted(order[start:end]))
        start = end
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", help="source data dir")
    parser.add_argument("outs", nargs="+", help="out_dir:N or out_dir:rest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    src = Path(args.src)
    utt2spk = read_scp(src / "utt2spk")
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    genders = read_scp(src / "spk2gender") if (src / "spk2gender").exists() else {}
    dirs, sizes = [], []
    for spec in args.outs:
        d, _, n = spec.rpartition(":")
        if not d or not (n == "rest" or n.isdigit()):
            parser.error(f"bad output {spec!r}: expected DIR:N or DIR:rest")
        dirs.append(d)
        sizes.append(None if n == "rest" else int(n))
    if sizes.count(None) > 1 or (None in sizes and sizes[-1] is not None):
        parser.error("only the last output may be 'rest'")
    groups = split_speakers(genders, list(spk2utt), sizes, args.seed)
    for d, spks in zip(dirs, groups):
        n = subset_data_dir(src, d, [u for s in spks for u in spk2utt[s]])
        logging.info("%s: %d speakers, %d utterances", d, len(spks), n)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
