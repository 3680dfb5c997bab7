"""Stage 3: keep utterances whose duration lies in [min, max] seconds.

Usage::

    python -m codectk.bin.filter_length --min_wav_duration 1 --max_wav_duration 20 \\
        --fs 16000 dump/raw/train_org dump/raw/train

Copies the data dir, dropping utterances outside the range; the dropped ids with their
durations and the reason are written to ``<out>/dropped`` and counted in the log.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.io.datadir import DataDirError, read_scp, subset_data_dir
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--min_wav_duration", type=float, default=0.0, help="seconds")
    p.add_argument("--max_wav_duration", type=float, default=float("inf"), help="seconds")
    p.add_argument("--fs", type=int, required=True, help="sample rate of the dump (Hz)")
    p.add_argument("src")
    p.add_argument("dst")
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.filter_length")
    src, dst = Path(args.src), Path(args.dst)
    lens = {u: int(n) for u, n in read_scp(src / "utt2num_samples").items()}
    keep, dropped = [], []
    for utt, n in lens.items():
        dur = n / args.fs
        if dur < args.min_wav_duration:
            dropped.append(
                f"{utt} {dur:.3f} shorter than --min_wav_duration {args.min_wav_duration}"
            )
        elif dur > args.max_wav_duration:
            dropped.append(
                f"{utt} {dur:.3f} longer than --max_wav_duration {args.max_wav_duration}"
            )
        else:
            keep.append(utt)
    if not keep:
        raise DataDirError(
            f"{src}: no utterance between {args.min_wav_duration} and {args.max_wav_duration} s"
        )
    if dst.exists():
        shutil.rmtree(dst)
    subset_data_dir(src, dst, keep)
    if (src / "fs").exists():
        shutil.copy(src / "fs", dst / "fs")
    with atomic_write(dst / "dropped") as f:
        f.writelines(line + "\n" for line in dropped)
    log.info(
        "%s -> %s: kept %d, dropped %d (listed in %s)",
        src,
        dst,
        len(keep),
        len(dropped),
        dst / "dropped",
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
