"""Streaming latency of an AudioDec model: per-chunk compute time and algorithmic delay.

Usage::

    python -m codectk.bin.stream_latency --config conf/symAD_vctk_48000_hop300.yaml \\
        [--model exp/codec_x] [--chunk_ms 12.5] [--threads 1] [--seconds 10] \\
        [--device cpu|cuda] [--engine fast|compiled|module] [--precision fp32|bf16]

Builds the model (untrained from ``--config``, or trained from ``--model``), streams
``--seconds`` of real speech from the bundled corpus (resampled to the model's rate)
through encode + decode chunk by chunk after one warm-up second, and prints one JSON
line: per-chunk compute time (mean, p50, p95, max in ms), the chunk duration, the
algorithmic delay (ms; the chunk length, as the causal model has no look-ahead), the
real-time factor (mean compute / chunk duration), the thread count, device, engine and
precision (``--precision bf16``: the fast or compiled engine's layers in bfloat16), and
for ``--engine compiled`` the compile time (``compile_s``, not in the per-chunk times).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from codectk.bin.common import parser, run
from codectk.bin.stream import (
    ChunkStreamer,
    chunk_samples,
    precision_dtype,
    stream_array,
    summarise_ms,
)
from codectk.errors import CodectkError

REPO = Path(__file__).resolve().parents[2]


def corpus_speech(seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of real speech (bundled LibriSpeech clips) at ``sample_rate``, (T,)."""
    from codectk.audio import read_audio, resample, to_mono

    files = sorted((REPO / "egs/mini_librispeech/codec1/corpus").glob("LibriSpeech/*/*/*/*.flac"))
    if not files:
        raise CodectkError("bundled corpus egs/mini_librispeech/codec1/corpus not found")
    chunks, total = [], 0
    for f in files:
        wav, fs = read_audio(str(f))
        chunks.append(resample(to_mono(wav), fs, sample_rate))
        total += len(chunks[-1])
        if total >= seconds * sample_rate:
            break
    return np.concatenate(chunks)[: int(seconds * sample_rate)].astype(np.float32)


def measure(
    codec,
    chunk_ms: float,
    seconds: float,
    device: str = "cpu",
    engine: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Stream speech through ``codec`` (eval, on ``device``) and time every chunk
    (``engine``, ``dtype``: see :class:`codectk.bin.stream.ChunkStreamer`).

    Returns:
        dict: ``mean_ms``, ``p50_ms``, ``p95_ms``, ``max_ms``, ``chunk_ms``,
        ``algorithmic_delay_ms``, ``rtf``, ``chunks``, ``threads``, ``device``, ``engine``,
        ``precision`` (fp32 or bf16), and ``compile_s`` for the compiled engine.
    """
    engine = engine or ("fast" if device == "cpu" else "module")
    chunk = chunk_samples(chunk_ms, codec.sample_rate)
    speech = corpus_speech(seconds + 1.0, codec.sample_rate)
    x = torch.from_numpy(speech)[None].repeat(codec.channels, 1)  # (C, T)
    streamer = ChunkStreamer(codec, engine, dtype, chunk)
    warm = codec.sample_rate // chunk * chunk
    stream_array(streamer, x[:, :warm], chunk, device)  # warm-up second, then a new stream
    streamer.reset()
    _, times = stream_array(streamer, x[:, warm:], chunk, device)
    s = summarise_ms(times)
    return {
        **s,
        "chunk_ms": chunk_ms,
        "algorithmic_delay_ms": chunk_ms,
        "rtf": s["mean_ms"] / chunk_ms,
        "chunks": len(times),
        "threads": torch.get_num_threads(),
        "device": device,
        "engine": engine,
        "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
        **(
            {"compile_s": round(streamer.runner.compile_seconds, 1)} if engine == "compiled" else {}
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--config", default=None, help="training YAML (untrained model)")
    p.add_argument("--model", default=None, help="trained experiment folder, model file or .zip")
    p.add_argument("--chunk_ms", type=float, default=12.5)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seconds", type=float, default=10.0, help="speech streamed (after warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--engine", default=None, help="fast (CPU default), compiled or module")
    p.add_argument(
        "--precision", default="fp32", help="fast or compiled engine arithmetic: fp32 or bf16"
    )
    args = p.parse_args(argv)
    if (args.config is None) == (args.model is None):
        raise CodectkError("give exactly one of --config and --model")
    torch.set_num_threads(args.threads)
    from codectk.inference import build_codec, load_codec
    from codectk.nn.conv import remove_weight_norm_

    if args.model:
        codec = load_codec(args.model, device=args.device, fold_weight_norm=True)
    else:
        codec = remove_weight_norm_(build_codec(args.config)).to(args.device).eval()
    engine = args.engine or ("fast" if args.device == "cpu" else "module")
    dtype = precision_dtype(args.precision, engine)
    print(json.dumps(measure(codec, args.chunk_ms, args.seconds, args.device, engine, dtype)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
