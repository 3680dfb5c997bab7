"""Stage 4: statistics of a dumped data dir, used for batching and reported in logs.

Usage::

    python -m codectk.bin.collect_stats --fs 16000 dump/raw/train exp/codec_stats_16000/train

Writes ``<out>/utt2num_samples`` (the lengths the trainer's sampler draws by) and
``<out>/stats.json``: utterance count, total/min/mean/max duration (s), and the
level of the audio (mean and std of per-utterance RMS in dBFS, peak), which flags a
quiet or clipped corpus before training.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
from humanfriendly import format_timespan

from codectk.bin.common import parser, run
from codectk.io.audio import read_audio, to_mono
from codectk.io.datadir import read_scp
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging, timed


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--fs", type=int, required=True, help="sample rate of the dump (Hz)")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.collect_stats")
    d, out = Path(args.data_dir), Path(args.out_dir)
    wav = read_scp(d / "wav.scp")
    lens = np.array([int(n) for n in read_scp(d / "utt2num_samples").values()], dtype=np.int64)
    rms_db, peaks, clipped = [], [], 0
    with timed(f"statistics of {len(wav)} utterances in {d}"):
        for i, spec in enumerate(wav.values(), 1):
            x = to_mono(read_audio(spec, where=f"{d / 'wav.scp'}:{i}")[0])
            rms_db.append(
                20 * np.log10(max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-10))
            )
            peak = float(np.abs(x).max())
            peaks.append(peak)
            clipped += peak >= 0.999
    dur = lens / args.fs
    stats = {
        "n_utts": int(len(lens)),
        "sample_rate": args.fs,
        "total_duration_s": float(dur.sum()),
        "min_duration_s": float(dur.min()),
        "mean_duration_s": float(dur.mean()),
        "max_duration_s": float(dur.max()),
        "rms_dbfs_mean": float(np.mean(rms_db)),
        "rms_dbfs_std": float(np.std(rms_db)),
        "peak_max": float(np.max(peaks)),
        "n_clipped": int(clipped),
    }
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(d / "utt2num_samples", out / "utt2num_samples")
    with atomic_write(out / "stats.json") as f:
        json.dump(stats, f, indent=2)
    log.info(
        "%s: %d utterances, %s of audio (%.2f to %.2f s), RMS %.1f +- %.1f dBFS, %d clipped; wrote %s",
        d,
        stats["n_utts"],
        format_timespan(stats["total_duration_s"]),
        stats["min_duration_s"],
        stats["max_duration_s"],
        stats["rms_dbfs_mean"],
        stats["rms_dbfs_std"],
        clipped,
        out / "stats.json",
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
