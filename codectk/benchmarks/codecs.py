"""SoundStream: encode + decode real-time factor and peak memory of the demo's tiny model
and the paper-size 24 kHz one, and training throughput of the tiny model (generator +
discriminator steps, audio seconds per second). No targets: these track regressions.

RTF = best wall-clock time of encode + decode over the repeats / audio duration (10 s of
bundled speech, 2 s with ``quick``), weight norm folded, under ``torch.inference_mode``;
each measurement runs in a fresh process whose peak resident memory is reported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from codectk.benchmarks._measure import REPO, best_time, corpus_files, in_subprocess, speech
from codectk.benchmarks._runner import rtf_row

CONFIGS = {
    "soundstream_16k_tiny": "egs/mini_librispeech/codec1/conf/soundstream_16k_tiny.yaml",
    "soundstream_24k_6kbps": "conf/soundstream_24k_6kbps.yaml",
}


def codec_job(config: str, threads: int, device: str, seconds: float, repeats: int) -> dict:
    """Encode + decode timing of one config in this process (see module doc)."""
    import torch

    from codectk.inference import build_codec, prepare_for_inference

    torch.set_num_threads(threads)
    codec = prepare_for_inference(build_codec(REPO / CONFIGS[config]).to(device))
    x = torch.from_numpy(speech(seconds, codec.sample_rate))[None, None].to(device)  # (1, 1, T)
    sync = torch.cuda.synchronize if device == "cuda" else None
    with torch.inference_mode():
        wall, cpu = best_time(lambda: codec.decode(codec.encode(x)), repeats, sync)
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "parameters_M": round(sum(p.numel() for p in codec.parameters()) / 1e6, 3),
        "bitrate_kbps": codec.bitrate(),
    }


def train_job(config: str, threads: int, steps: int) -> dict:
    """Training steps (G + D) per second of one config on the CPU, in this process."""
    import time

    import torch

    from codectk.config import load_train_config
    from codectk.dump import dump_wav_scp
    from codectk.train.trainer import Trainer

    torch.set_num_threads(threads)
    conf = load_train_config(
        REPO / CONFIGS[config], ["--discriminator_start_step", "0", "--log_interval", "1000000"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in corpus_files(4)))
        dump_wav_scp(src / "wav.scp", conf.codec_conf["sample_rate"], f"{tmp}/wav", f"{tmp}/d")
        trainer = Trainer(conf, Path(tmp, "exp"), f"{tmp}/d", f"{tmp}/d")
        trainer._train_step(trainer.train_set[0])  # warm-up
        t0 = time.perf_counter()
        for s in range(1, steps + 1):
            trainer.step = s
            trainer._train_step(trainer.train_set[s])
        dt = time.perf_counter() - t0
    return {
        "steps_per_s": steps / dt,
        "audio_s_per_s": steps * conf.batch_size * conf.segment_duration / dt,
        "batch_size": conf.batch_size,
        "segment_seconds": conf.segment_duration,
    }


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """Rows for every config and thread count (see module doc)."""
    seconds, repeats = (2.0, 1) if quick else (10.0, 3)
    configs = ["soundstream_16k_tiny"] if quick else list(CONFIGS)
    rows = []
    for config in configs:
        for th in threads:
            r = in_subprocess(
                "codectk.benchmarks.codecs:codec_job",
                dict(config=config, threads=th, device=device, seconds=seconds, repeats=repeats),
            )
            common = dict(threads=th, device=device, audio_seconds=seconds)
            extra = dict(parameters_M=r["parameters_M"], bitrate_kbps=r["bitrate_kbps"])
            rows.append(rtf_row(config, r, seconds, **common, **extra))
            rows.append(
                dict(
                    name=config,
                    metric="encode+decode peak RSS",
                    value=r["peak_rss_MiB"],
                    unit="MiB",
                    **common,
                )
            )
    if device != "cpu":
        return rows
    for th in threads:
        r = in_subprocess(
            "codectk.benchmarks.codecs:train_job",
            dict(config="soundstream_16k_tiny", threads=th, steps=1 if quick else 5),
        )
        rows.append(
            dict(
                name="soundstream_16k_tiny",
                metric="training throughput",
                value=r["audio_s_per_s"],
                unit="audio s/s",
                threads=th,
                device=device,
                steps_per_s=round(r["steps_per_s"], 3),
                batch_size=r["batch_size"],
                segment_seconds=r["segment_seconds"],
                peak_rss_MiB=r["peak_rss_MiB"],
            )
        )
    return rows
