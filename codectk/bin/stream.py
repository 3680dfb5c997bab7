"""Encode and decode a file chunk by chunk with a streaming AudioDec model.

Usage::

    codectk stream IN.wav OUT.wav --model exp/codec_x [--chunk_ms 12.5] [--num_threads 1]
        [--engine fast|compiled|module] [--precision fp32|bf16] [--autotune true|false]
        [--device cpu]
    codectk stream --in_scp wav.3.scp --out_dir exp/codec_x/stream_test/wav --model ...

With ``--in_scp`` (one job of a ``run.pl JOB=1:N`` array) every utterance of the
wav.scp streams in turn through one loaded model, to ``<out_dir>/<utt>.wav``, each a
new stream from the zero state, and the log ends with the per-chunk times over all of
them.

Reads IN (its rate must be the model's; channels must match its ``input_channels``,
a mono model averages them), splits it into chunks of ``chunk_ms`` (the last one
zero-padded), runs ``encode_chunk`` then ``decode_chunk`` on each in order, as a
sender and a receiver would, and writes OUT trimmed to IN's length. The result equals
whole-file ``codectk decode_datadir`` decoding (to float rounding). ``--engine fast``
(CPU default) uses :class:`codectk.models.audiodec_stream.StreamingAudioDec`,
``compiled`` :class:`codectk.models.audiodec_compiled.CompiledStreamingAudioDec` (the
same computation compiled by ``torch.compile`` for the chunk length: the fastest on CPU,
needs a C++ compiler, compiles for about a minute: ``--autotune false`` skips timing
its GEMM kernels, faster to compile, slower to run), ``module`` the
models' own ``encode_chunk`` / ``decode_chunk`` (also on GPU). ``--precision bf16`` runs
the fast or compiled engine's layers in bfloat16 (faster on CPUs with AVX512-BF16, not
bit-equal to fp32). The log reports the per-chunk compute time (mean,
p50, p95 in ms) and the algorithmic delay.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import torch

from codectk.audio import AudioError, read_audio, to_mono, write_audio
from codectk.bin.common import parser, run, setup_logging, str2bool
from codectk.datadir import read_scp
from codectk.errors import CodectkError
from codectk.inference import PRECISIONS, load_codec
from codectk.models.audiodec import AudioDecAnalysis

ENGINES = ("fast", "compiled", "module")


def precision_dtype(precision: str, engine: str) -> torch.dtype:
    """The fast engine's dtype for ``--precision`` (fp32 or bf16).

    Raises:
        CodectkError: an unknown precision, or bf16 with the module engine.
    """
    if precision not in PRECISIONS:
        raise CodectkError(
            f"--precision {precision!r} not supported; choose one of {list(PRECISIONS)}"
        )
    if precision != "fp32" and engine == "module":
        raise CodectkError(
            f"--precision {precision} needs --engine fast or compiled (got {engine})"
        )
    return PRECISIONS[precision]


class ChunkStreamer:
    """Run a streaming AudioDec codec chunk after chunk (one stream).

    Args:
        codec (AudioDecAnalysis): eval-mode codec (weight norm folded for speed).
        engine (str): "fast" (time-major GEMM engine, CPU), "compiled" (the same,
            compiled for ``chunk`` samples; CPU) or "module".
        dtype (torch.dtype): arithmetic of the fast or compiled engine's layers
            (float32: equal to the modules; bfloat16: faster, not bit-equal).
        chunk (int | None): samples per chunk, needed by "compiled" (a multiple of
            the hop length; every chunk then has this length).
        autotune (bool): the compiled engine's GEMM autotuning.

    Raises:
        CodectkError: a codec without the chunk API, an unknown engine, "compiled"
            without a valid ``chunk`` or where torch.compile cannot run.
    """

    def __init__(
        self,
        codec,
        engine: str = "fast",
        dtype: torch.dtype = torch.float32,
        chunk: int | None = None,
        autotune: bool = True,
    ):
        if not isinstance(codec, AudioDecAnalysis):
            raise CodectkError(
                f"streaming needs a symad/audiodec model, got {type(codec).__name__}"
            )
        if engine not in ENGINES:
            raise CodectkError(f"engine {engine!r} not supported; choose one of {list(ENGINES)}")
        self.codec, self.engine = codec, engine
        self.runner = None  # the fast or compiled engine
        if engine == "fast":
            from codectk.models.audiodec_stream import StreamingAudioDec

            self.runner = StreamingAudioDec(codec, dtype)
        elif engine == "compiled":
            from codectk.models.audiodec_compiled import CompiledStreamingAudioDec

            try:
                self.runner = CompiledStreamingAudioDec(codec, chunk or 0, dtype, autotune=autotune)
            except ValueError as e:  # a chunk that is not a multiple of the hop length
                raise CodectkError(f"the compiled engine: {e}") from e
            logging.getLogger("codectk.stream").info(
                "compiled the streaming engine for %d-sample chunks in %.1f s",
                chunk,
                self.runner.compile_seconds,
            )
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.enc_state = self.dec_state = None
        if self.runner is not None:
            self.runner.reset()

    @torch.inference_mode()
    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        """chunk (C_in, L) -> decoded (C_out, L') for the frames it completes."""
        if self.runner is not None:
            return self.runner.decode_chunk(self.runner.encode_chunk(chunk))
        codes, self.enc_state = self.codec.encode_chunk(chunk[None], self.enc_state)
        wav, self.dec_state = self.codec.decode_chunk(codes, self.dec_state)
        return wav[0]


def stream_array(
    streamer: ChunkStreamer, wav: torch.Tensor, chunk: int, device: str = "cpu"
) -> tuple[torch.Tensor, list[float]]:
    """Stream a whole signal (C, T) in chunks of ``chunk`` samples.

    Returns:
        tuple[Tensor, list[float]]: output (C_out, T) on CPU and the compute time of
        each chunk (seconds).
    """
    t = wav.shape[-1]
    pad = -t % chunk
    x = torch.nn.functional.pad(wav, (0, pad)).to(device)
    outs, times = [], []
    for i in range(0, x.shape[-1], chunk):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = streamer(x[:, i : i + chunk])
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        outs.append(y.cpu())
    return torch.cat(outs, dim=-1)[:, :t], times


def summarise_ms(times: list[float]) -> dict[str, float]:
    """mean, p50, p95 and max of per-chunk times (seconds) in ms."""
    a = np.asarray(times) * 1e3
    return {
        "mean_ms": float(a.mean()),
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "max_ms": float(a.max()),
    }


def chunk_samples(chunk_ms: float, sample_rate: int) -> int:
    """Samples in a chunk of ``chunk_ms``.

    Raises:
        CodectkError: a duration that is not a positive whole number of samples.
    """
    n = chunk_ms * sample_rate / 1000.0
    if n < 1 or abs(n - round(n)) > 1e-6:
        raise CodectkError(
            f"--chunk_ms {chunk_ms} is not a whole number of samples at {sample_rate} Hz"
        )
    return round(n)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("input", nargs="?", help="input audio file")
    p.add_argument("output", nargs="?", help="output WAV file")
    p.add_argument("--in_scp", default=None, help="wav.scp to stream (instead of IN OUT)")
    p.add_argument("--out_dir", default=None, help="with --in_scp: folder of <utt>.wav")
    p.add_argument("--model", required=True, help="experiment folder, model file or packed .zip")
    p.add_argument("--model_file", default=None, help="model file inside the experiment folder")
    p.add_argument("--chunk_ms", type=float, default=12.5, help="chunk duration (ms)")
    p.add_argument(
        "--engine", default=None, help="fast (CPU default), compiled or module (GPU default)"
    )
    p.add_argument(
        "--precision", default="fp32", help="fast or compiled engine arithmetic: fp32 or bf16"
    )
    p.add_argument(
        "--autotune", type=str2bool, default=True, help="compiled engine: autotune its GEMMs"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads (0: default)")
    args = p.parse_args(argv)
    single, scp = (args.input, args.output), (args.in_scp, args.out_dir)
    if sum(None not in x for x in (single, scp)) != 1 or any(
        x.count(None) == 1 for x in (single, scp)
    ):
        p.error("give IN OUT, or --in_scp and --out_dir")
    setup_logging()
    log = logging.getLogger("codectk.stream")
    if args.in_scp is None:
        pairs = [(args.input, args.output, args.input)]
    else:
        table = read_scp(args.in_scp)
        pairs = [
            (spec, f"{args.out_dir}/{utt}.wav", f"{args.in_scp}:{i}")
            for i, (utt, spec) in enumerate(table.items(), 1)
        ]
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    codec = load_codec(args.model, args.model_file, args.device, fold_weight_norm=True)
    engine = args.engine or ("fast" if args.device == "cpu" else "module")
    dtype = precision_dtype(args.precision, engine)
    chunk = chunk_samples(args.chunk_ms, codec.sample_rate)
    streamer = ChunkStreamer(codec, engine, dtype, chunk, args.autotune)
    all_times = []
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
        streamer.reset()
        y, times = stream_array(
            streamer, torch.from_numpy(np.ascontiguousarray(wav)), chunk, args.device
        )
        write_audio(output, y.numpy(), codec.sample_rate)
        all_times += times
        s = summarise_ms(times)
        log.info(
            "stream: %d chunks of %d samples (%.2f ms), engine %s (%s), %d thread(s): compute per chunk "
            "mean %.2f ms, p50 %.2f ms, p95 %.2f ms; algorithmic delay %.2f ms (chunk, no look-ahead) -> %s",
            len(times),
            chunk,
            args.chunk_ms,
            engine,
            args.precision,
            torch.get_num_threads(),
            s["mean_ms"],
            s["p50_ms"],
            s["p95_ms"],
            args.chunk_ms,
            output,
        )
    if args.in_scp is not None:
        s = summarise_ms(all_times)
        log.info(
            "stream: %d utterances of %s, %d chunks: compute per chunk mean %.2f ms, p50 %.2f ms, "
            "p95 %.2f ms, max %.2f ms -> %s",
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
