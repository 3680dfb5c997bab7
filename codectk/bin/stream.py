"""Encode and decode a file chunk by chunk with a causal (streaming) codec.

Usage::

    codectk stream IN.wav OUT.wav --model exp/codec_x [--chunk_ms 12.5] [--num_threads 1]
        [--engine module|compiled] [--precision fp32|bf16] [--autotune true|false]
        [--device cpu]
    codectk stream --in_scp wav.3.scp --out_dir exp/codec_x/stream_test/wav --model ...

With ``--in_scp`` (one job of a ``run.pl JOB=1:N`` array) every utterance of the
wav.scp streams in turn through one loaded model, to ``<out_dir>/<utt>.wav``, each a
new stream from the zero state, and the log ends with the per-chunk times over all of
them.

Reads IN (its rate must be the model's; channels must match its input channels, a mono
model averages them), splits it into chunks of ``chunk_ms`` (the last one zero-padded),
encodes and decodes each in order, as a sender and a receiver would
(:class:`codectk.streaming.Streamer`), and writes OUT trimmed to IN's length. The result
equals whole-file ``codectk codec_inference`` decoding (to float rounding). Any causal
codec streams: SoundStream and EnCodec with ``causal: true``, AudioDec's symAD and AD
vocoders.

``--engine module`` (default) runs the codec's own layers step by step; ``compiled``
compiles the encode and decode steps for the chunk length with ``torch.compile`` (the
fastest on CPU; needs a C++ compiler and a chunk that is a multiple of the hop; compiles
for a minute or more: ``--autotune false`` skips timing its GEMM kernels, faster to
compile, slower to run). ``--engine fast`` (the hand-written engine removed in issue 20)
is accepted as ``module`` with a warning. ``--precision bf16`` runs encoder and decoder in
bfloat16 (faster on CPUs with AVX512-BF16, not bit-equal to fp32). The log reports the
per-chunk compute time (mean, p50, p95 in ms) and the algorithmic delay.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import torch

from codectk.bin.common import (
    add_device_args,
    add_model_args,
    add_streaming_args,
    parser,
    precision_dtype,
    resolve_engine,
    run,
    set_num_threads,
)
from codectk.inference import load_codec
from codectk.io.audio import AudioError, read_audio, to_mono, write_audio
from codectk.io.datadir import read_scp
from codectk.log import setup_logging
from codectk.streaming import Streamer, chunk_samples, summarise_ms


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("input", nargs="?", help="input audio file")
    p.add_argument("output", nargs="?", help="output WAV file")
    p.add_argument("--in_scp", default=None, help="wav.scp to stream (instead of IN OUT)")
    p.add_argument("--out_dir", default=None, help="with --in_scp: folder of <utt>.wav")
    add_model_args(p)
    add_streaming_args(p)
    add_device_args(p)
    args = p.parse_args(argv)
    single, scp = (args.input, args.output), (args.in_scp, args.out_dir)
    if sum(None not in x for x in (single, scp)) != 1 or any(
        x.count(None) == 1 for x in (single, scp)
    ):
        p.error("give IN OUT, or --in_scp and --out_dir")
    setup_logging()
    log = logging.getLogger("codectk.stream")
    set_num_threads(args.num_threads)
    engine = resolve_engine(args.engine)
    dtype = precision_dtype(args.precision)
    if args.in_scp is None:
        pairs = [(args.input, args.output, args.input)]
    else:
        table = read_scp(args.in_scp)
        pairs = [
            (spec, f"{args.out_dir}/{utt}.wav", f"{args.in_scp}:{i}")
            for i, (utt, spec) in enumerate(table.items(), 1)
        ]
    codec = load_codec(args.model, args.model_file, args.device, fold_weight_norm=True)
    chunk = chunk_samples(args.chunk_ms, codec.sample_rate)
    streamer = Streamer(codec, chunk, engine == "compiled", dtype, autotune=args.autotune)
    if engine == "compiled":
        log.info("compiled the streaming steps for %d-sample chunks in %.1f s", chunk,
                 streamer.compile_seconds)  # fmt: skip
    all_times: list[float] = []
    for path, output, where in pairs:
        wav, fs = read_audio(path, where)
        if fs != codec.sample_rate:
            raise AudioError(
                f"{where}: {path} is {fs} Hz; the model expects {codec.sample_rate} Hz"
            )
        if codec.channels == 1:
            wav = to_mono(wav)[None]
        elif wav.shape[0] != codec.channels:
            raise AudioError(
                f"{where}: {path} has {wav.shape[0]} channels; the model takes {codec.channels}"
            )
        x = torch.from_numpy(np.ascontiguousarray(wav))[None]  # (1, C, T)
        _, y, times = streamer.stream(x, sync=args.device.startswith("cuda"))  # from zero state
        write_audio(output, y[0].numpy(), codec.sample_rate)
        all_times += times
        s = summarise_ms(times)
        log.info(
            "stream: %d chunks of %d samples (%.2f ms), engine %s (%s), %d thread(s): compute "
            "per chunk mean %.2f ms, p50 %.2f ms, p95 %.2f ms; algorithmic delay %.2f ms (no "
            "look-ahead) -> %s",
            len(times),
            chunk,
            args.chunk_ms,
            engine,
            args.precision,
            torch.get_num_threads(),
            s["mean_ms"],
            s["p50_ms"],
            s["p95_ms"],
            streamer.delay * 1000.0 / codec.sample_rate,
            output,
        )
    if args.in_scp is not None:
        s = summarise_ms(all_times)
        log.info(
            "stream: %d utterances of %s, %d chunks: compute per chunk mean %.2f ms, p50 %.2f "
            "ms, p95 %.2f ms, max %.2f ms -> %s",
            len(pairs),
            args.in_scp,
            len(all_times),
            s["mean_ms"],
            s["p50_ms"],
            s["p95_ms"],
            s["max_ms"],
            args.out_dir,
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
