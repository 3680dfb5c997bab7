"""Streaming latency of a causal codec: per-chunk compute time and algorithmic delay.

Usage::

    python -m codectk.bin.stream_latency --config conf/symAD_vctk_48000_hop300.yaml \\
        [--model exp/codec_x] [--chunk_ms 12.5] [--threads 1] [--seconds 10] \\
        [--device cpu|cuda] [--engine module|compiled] [--precision fp32|bf16] \\
        [--autotune true|false]

Builds the model (untrained from ``--config``, or trained from ``--model``), streams
``--seconds`` of real speech from the bundled corpus (resampled to the model's rate)
through encode + decode chunk by chunk (:func:`codectk.streaming.measure_latency`) after
one warm-up second, and prints one JSON line: per-chunk compute time (mean, p50, p95, max
in ms), the chunk duration, the algorithmic delay (ms), the real-time factor (mean
compute / chunk duration), the thread count, device, engine and precision, and for
``--engine compiled`` the compile time (``compile_s``, not in the per-chunk times).
``--engine fast`` (removed) runs ``module``, with a warning.
"""

from __future__ import annotations

import json
import sys

import torch

from codectk.bin.common import add_streaming_args, parser, precision_dtype, resolve_engine, run
from codectk.errors import CodectkError


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--config", default=None, help="training YAML (untrained model)")
    p.add_argument("--model", default=None, help="trained experiment folder, model file or .zip")
    add_streaming_args(p)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seconds", type=float, default=10.0, help="speech streamed (after warm-up)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if (args.config is None) == (args.model is None):
        raise CodectkError("give exactly one of --config and --model")
    torch.set_num_threads(args.threads)
    from codectk.benchmarks._measure import speech
    from codectk.inference import build_codec, load_codec
    from codectk.nn.conv import remove_weight_norm_
    from codectk.streaming import measure_latency

    engine = resolve_engine(args.engine)
    dtype = precision_dtype(args.precision)
    if args.model:
        codec = load_codec(args.model, device=args.device, fold_weight_norm=True)
    else:
        codec = remove_weight_norm_(build_codec(args.config)).to(args.device).eval()
    wav = torch.from_numpy(speech(args.seconds + 1.0, codec.sample_rate))
    wav = wav[None].repeat(codec.channels, 1)  # (C, T)
    r = measure_latency(
        codec, wav, args.chunk_ms, engine == "compiled", dtype, autotune=args.autotune
    )
    print(json.dumps({**r, "engine": engine}))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
