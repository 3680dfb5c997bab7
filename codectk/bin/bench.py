"""``make bench``: speed and memory of codectk's codecs, written to a results file.

Usage::

    python -m codectk.bin.bench --out bench/results/latest.json [--seconds 10] [--repeats 3]

For each benchmarked config (the demo's tiny SoundStream and the paper-size 24 kHz one),
on CPU with 1 thread and with all cores (and on CUDA when present), it measures
encode + decode of ``--seconds`` of real speech from the bundled corpus (resampled to
the codec's rate): the real-time factor (compute time / audio duration, best of
``--repeats``) and the peak resident memory of a fresh process; and the training
throughput of the tiny config (audio seconds per second, generator + discriminator).
Each measurement runs in its own process so memory peaks do not mix.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.fileio import atomic_write

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    "soundstream_16k_tiny": REPO / "egs/mini_librispeech/codec1/conf/soundstream_16k_tiny.yaml",
    "soundstream_24k_6kbps": REPO / "conf/soundstream_24k_6kbps.yaml",
}


def _speech(seconds: float, sample_rate: int):
    import numpy as np

    from codectk.audio import read_audio, resample, to_mono

    files = sorted((REPO / "egs/mini_librispeech/codec1/corpus").glob("LibriSpeech/*/*/*/*.flac"))
    chunks, total = [], 0
    for f in files:
        wav, fs = read_audio(str(f))
        chunks.append(resample(to_mono(wav), fs, sample_rate))
        total += len(chunks[-1])
        if total >= seconds * sample_rate:
            break
    return np.concatenate(chunks)[: int(seconds * sample_rate)]


def _codec_job(name: str, threads: int, device: str, seconds: float, repeats: int, q) -> None:
    import torch

    import codectk

    torch.set_num_threads(threads)
    codec = codectk.build_codec(CONFIGS[name]).to(device).eval()
    x = torch.from_numpy(_speech(seconds, codec.sample_rate))[None, None].to(device)  # (1, 1, T)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first run warms up
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            codec.decode(codec.encode(x))
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    best = min(times[1:])
    q.put(
        {
            "config": name,
            "task": "encode+decode",
            "device": device,
            "threads": threads,
            "audio_seconds": seconds,
            "parameters_M": round(sum(p.numel() for p in codec.parameters()) / 1e6, 3),
            "bitrate_kbps": codec.bitrate(),
            "best_seconds": round(best, 4),
            "rtf": round(best / seconds, 4),
            "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _train_job(name: str, threads: int, steps: int, q) -> None:
    import tempfile

    import torch

    from codectk.bin import dump_wav
    from codectk.config import load_train_config
    from codectk.train.trainer import Trainer

    torch.set_num_threads(threads)
    config = load_train_config(
        CONFIGS[name], ["--discriminator_start_step", "0", "--log_interval", "1000000"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(
            (REPO / "egs/mini_librispeech/codec1/corpus").glob("LibriSpeech/*/*/*/*.flac")
        )[:4]
        src = Path(tmp, "src")
        src.mkdir()
        (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in files))
        sr = config.codec_conf["sample_rate"]
        dump_wav.main(
            [
                "--fs",
                str(sr),
                "--in_scp",
                str(src / "wav.scp"),
                "--out_wav_dir",
                f"{tmp}/wav",
                "--out_dir",
                f"{tmp}/d",
            ]
        )
        trainer = Trainer(config, Path(tmp, "exp"), f"{tmp}/d", f"{tmp}/d")
        trainer._train_step(trainer.train_set[0])  # warm-up
        t0 = time.perf_counter()
        for s in range(1, steps + 1):
            trainer.step = s
            trainer._train_step(trainer.train_set[s])
        dt = time.perf_counter() - t0
    q.put(
        {
            "config": name,
            "task": "train (G + D step)",
            "device": "cpu",
            "threads": threads,
            "batch_size": config.batch_size,
            "segment_seconds": config.segment_duration,
            "steps_per_s": round(steps / dt, 3),
            "audio_s_per_s": round(steps * config.batch_size * config.segment_duration / dt, 3),
            "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--out", default="bench/results/latest.json")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per encode+decode run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train_steps", type=int, default=5)
    args = p.parse_args(argv)
    import torch

    cores = os.cpu_count() or 1
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for name in CONFIGS:
        for threads in sorted({1, cores}):
            results.append(_run(_codec_job, name, threads, "cpu", args.seconds, args.repeats))
            print(json.dumps(results[-1]), flush=True)
        if "cuda" in devices:
            results.append(_run(_codec_job, name, cores, "cuda", args.seconds, args.repeats))
            print(json.dumps(results[-1]), flush=True)
    for threads in sorted({1, cores}):
        results.append(_run(_train_job, "soundstream_16k_tiny", threads, args.train_steps))
        print(json.dumps(results[-1]), flush=True)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpu_count": cores,
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if "cuda" in devices else None,
        },
        "results": results,
    }
    with atomic_write(args.out) as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
