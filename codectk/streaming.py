"""Stream any causal codec chunk by chunk: :class:`Streamer` (DESIGN.md, "Streaming").

A :class:`Streamer` runs the codec's own ``encode`` and ``synthesise`` as streaming steps
(:func:`codectk.nn.streaming.stream_step`): every stateful causal layer (convolution,
transposed convolution, LSTM) keeps its state between steps, the other layers are
pointwise in time, so the codes and the waveform of consecutive chunks, concatenated,
equal those of the whole utterance (to float rounding). Causal SoundStream and EnCodec
(``causal: true``), AudioDec's symAD and AD vocoders (MIMO too) stream.

* Input is consumed in whole hops: the samples of an incomplete hop wait for the next
  chunk (or :meth:`Streamer.flush`, which zero-pads them as ``encode`` pads a signal's
  end). Every layer then sees a whole number of its strides per step.
* Layers that read the first samples of the stream (EnCodec's reflect padding) hold
  their output back until those samples are in (EnCodec: 7 frames, the kernel of its
  encoder's last and decoder's first convolution); :meth:`Streamer.flush` releases what
  is held.
* ``compile=True`` compiles the encode step and the decode step of one chunk length (a
  multiple of the hop) with ``torch.compile`` (TorchInductor: ``freezing`` folds the
  weights in as constants, ``max_autotune`` times the generated GEMM kernels against
  oneDNN / MKL, ``cpp_wrapper`` drops Python between kernels); the convolutions are
  traced as matrix products over gathered taps (:func:`codectk.nn.conv_kernels.conv1d_gemm`).
  Chunks are then run in groups of ``chunk`` samples (``chunk / hop`` frames for
  decoding); the stream's start (until every layer has seen its first samples) runs
  uncompiled, so the compiled graph is the steady state only. Construction compiles
  every variant the stream needs on silent chunks; after that dynamo checks only the
  guards that pick between them, so the codec's weights must not change while the
  Streamer is used. It needs a C++ compiler.
* ``dtype=torch.bfloat16`` runs encoder and decoder in bfloat16 on a copy of the codec
  (:meth:`codectk.models.base.Codec.set_inference_dtype`; the quantizer stays float32):
  faster on CPUs with AVX512-BF16 / AMX, not bit-equal to float32.

For speed, fold weight norm first (``load_codec(..., fold_weight_norm=True)`` or
:func:`codectk.nn.conv.remove_weight_norm_`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import CodectkError, check_choice
from codectk.models.api import model_method
from codectk.models.base import AutoencoderCodec
from codectk.nn.streaming import (
    check_streamable,
    init_states,
    states_started,
    stream_modules,
    stream_step,
)

DTYPES = (torch.float32, torch.bfloat16)


def _steady_stance():
    """For the steady state's compiled steps once warmed up: they get the inputs they were
    compiled for (fixed buffers, the states they returned), so dynamo checks only the
    guards that pick between the compiled variants, not every guard of the step. A fresh
    context manager each time: constructing one sets the stance,
    leaving it restores the previous one."""
    return torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)


COMPILE_ERRORS = ("InvalidCxxCompiler", "CppCompileError", "C++ compiler", "BackendCompilerFailed")


class _EncodeStep(nn.Module):
    """(wav (B, C, L), states) -> (codes (B, K', L / hop), states)."""

    def __init__(self, codec: AutoencoderCodec, n_quantizers: int):
        super().__init__()
        self.codec, self.n_quantizers = codec, n_quantizers

    def forward(self, wav: Tensor, states: dict, final: bool = False):
        encode = model_method(self.codec, "encode")  # the model's own: chunks may be empty
        return stream_step(encode, states, wav, self.n_quantizers, final=final)


class _DecodeStep(nn.Module):
    """(codes (B, K', F), states) -> (waveform (B, C_out, F hop), states)."""

    def __init__(self, codec: AutoencoderCodec):
        super().__init__()
        self.codec = codec

    def _synthesise(self, codes: Tensor) -> Tensor:
        return self.codec.synthesise(self.codec.quantizer.decode(codes.long()))

    def forward(self, codes: Tensor, states: dict, final: bool = False):
        return stream_step(self._synthesise, states, codes, final=final)


class Streamer:
    """Encoder and decoder of one stream of B signals, chunk by chunk (see module doc).

    Args:
        codec (AutoencoderCodec): a causal codec in eval mode (weights are shared; with
            bfloat16, copied).
        chunk (int): samples per chunk: the unit of :meth:`stream` and, with ``compile``,
            of every compiled step (then a positive multiple of ``hop_length``).
        compile (bool): compile the encode and decode steps (see module doc).
        dtype (torch.dtype): float32 (equal to whole-utterance decoding to float
            rounding) or bfloat16 (encoder and decoder layers; lossy).
        n_quantizers (int | None): codebooks used by the encoder (None: all).
        batch (int): signals streamed together (B).
        autotune (bool): with ``compile``, time the generated GEMM kernels (minutes the
            first time; cached on disk).

    Raises:
        CodectkError: a codec that is not causal (naming the layer), in training mode,
            another dtype, a bad chunk, or torch.compile that cannot run here (the
            message names the missing C++ compiler).
    """

    def __init__(
        self,
        codec: AutoencoderCodec,
        chunk: int,
        compile: bool = False,
        dtype: torch.dtype = torch.float32,
        n_quantizers: int | None = None,
        batch: int = 1,
        autotune: bool = True,
    ):
        if not isinstance(codec, AutoencoderCodec):
            raise CodectkError(f"streaming needs a causal codec, got {type(codec).__name__}")
        try:
            check_streamable(codec, type(codec).__name__)
        except ValueError as e:
            raise CodectkError(f"{type(codec).__name__} cannot stream: {e}") from None
        if codec.training:
            raise CodectkError("streaming needs the codec in eval mode (codec.eval())")
        check_choice("dtype", dtype, DTYPES, CodectkError)
        hop = codec.hop_length
        if chunk < 1 or (compile and chunk % hop):
            need = f"a positive multiple of the hop length {hop}" if compile else "positive"
            raise CodectkError(f"chunk of {chunk} samples: it must be {need}")
        if dtype != torch.float32:
            codec = copy.deepcopy(codec)
            codec.set_inference_dtype(dtype)
        self.codec, self.chunk, self.dtype, self.batch = codec, chunk, dtype, batch
        self.hop_length, self.channels = hop, codec.channels
        self.n_quantizers = codec.quantizer.check_n_quantizers(n_quantizers)
        self.compiled = compile
        self._encode_step = _EncodeStep(codec, self.n_quantizers)
        self._decode_step = _DecodeStep(codec)
        decoder_layers = {id(m) for _, m in stream_modules(codec.decoder)}
        states = init_states(codec, batch)
        self._decoder_keys = {
            m.stream_key for _, m in stream_modules(codec) if id(m) in decoder_layers
        }
        self._encoder_keys = set(states) - self._decoder_keys
        self.compile_seconds = 0.0
        self._warm = False
        if compile:
            self._compile(autotune)
        self.reset()

    # ------------------------------------------------------------------ state
    @torch.inference_mode()
    def reset(self) -> None:
        """Start a new stream (every layer at its initial state, nothing pending)."""
        states = init_states(self.codec, self.batch)
        self.enc_states = {k: v for k, v in states.items() if k in self._encoder_keys}
        self.dec_states = {k: v for k, v in states.items() if k in self._decoder_keys}
        device = next(self.codec.parameters()).device
        self._samples = torch.zeros(self.batch, self.channels, 0, device=device)
        self._codes = torch.zeros(self.batch, self.n_quantizers, 0, dtype=torch.long, device=device)
        self._started_parts: set[str] = set()

    def _started(self, part: str) -> bool:
        """Whether every layer of ``part`` ("encoder" or "decoder" states) is past the
        stream's start (checked until it is, then remembered)."""
        if part not in self._started_parts:
            states = self.enc_states if part == "encoder" else self.dec_states
            if not states_started(self.codec, states):
                return False
            self._started_parts.add(part)
        return True

    # ------------------------------------------------------------------ steps
    @torch.inference_mode()
    def encode(self, wav: Tensor) -> Tensor:
        """Encode the next samples of the stream.

        Args:
            wav (Tensor): (B, channels, L), any L >= 0.

        Returns:
            Tensor: codes (B, K', F) of the hops completed (the others wait).

        Raises:
            ValueError: wav not (B, channels, L).
        """
        return self._encode(wav)

    def _encode(self, wav: Tensor) -> Tensor:
        if wav.dim() != 3 or wav.shape[:2] != (self.batch, self.channels):
            raise ValueError(
                f"wav must be ({self.batch}, {self.channels}, L), got {tuple(wav.shape)}"
            )
        unit = self.chunk if self.compiled else self.hop_length
        x, self._samples = _whole_units(self._samples, wav.to(self._samples), unit)
        return self._run_encoder(x, unit)

    def _run_encoder(self, x: Tensor, unit: int, final: bool = False) -> Tensor:
        codes = []
        start = 0
        while start < x.shape[-1] or (final and start == 0):
            if self.compiled and not final and self._started("encoder"):
                n = unit  # the steady state: one compiled chunk, from the fixed buffer
                self._wav_buffer.copy_(x[..., start : start + n])
                with self._stance():
                    c, self.enc_states = self._encode_compiled(self._wav_buffer, self.enc_states)
            else:
                n = unit if self.compiled else x.shape[-1]  # uncompiled: all at once
                c, self.enc_states = self._encode_step(
                    x[..., start : start + n], self.enc_states, final
                )
            codes.append(c)
            start += max(n, 1)
        return codes[0] if len(codes) == 1 else _cat(codes, self._codes[..., :0])

    @torch.inference_mode()
    def decode(self, codes: Tensor) -> Tensor:
        """Decode the next codes of the stream.

        Args:
            codes (Tensor): integer (B, K', F), any F >= 0.

        Returns:
            Tensor: waveform (B, output channels, F' hop) in float32; F' = F uncompiled,
            the frames of whole chunks when compiled (the others wait).

        Raises:
            ValueError: from :meth:`~codectk.models.base.Codec.check_codes`.
        """
        if codes.shape[-1]:
            self.codec.check_codes(codes)
        return self._decode(codes.long())

    def _decode(self, codes: Tensor) -> Tensor:
        if self.compiled:
            unit = self.chunk // self.hop_length
            codes, self._codes = _whole_units(self._codes, codes, unit)
        return self._run_decoder(codes)

    def _run_decoder(self, codes: Tensor, final: bool = False) -> Tensor:
        outs = []
        if self.compiled and not final:
            unit = self.chunk // self.hop_length
            start = 0
            while start < codes.shape[-1] and not self._started("decoder"):
                y, self.dec_states = self._decode_step(
                    codes[..., start : start + unit], self.dec_states
                )
                outs.append(y)
                start += unit
            for i in range(start, codes.shape[-1], unit):
                self._codes_buffer.copy_(codes[..., i : i + unit])
                with self._stance():
                    y, self.dec_states = self._decode_compiled(self._codes_buffer, self.dec_states)
                outs.append(y)
        elif codes.shape[-1] or final:
            y, self.dec_states = self._decode_step(codes, self.dec_states, final)
            outs.append(y)
        if len(outs) == 1:
            return outs[0].float()
        empty = torch.zeros(self.batch, self.codec_out_channels, 0, device=codes.device)
        return _cat(outs, empty).float()

    def _stance(self):
        """The steady stance after the warm-up, which compiles every variant; before it,
        every guard runs (a variant not compiled yet must be)."""
        return _steady_stance() if self._warm else contextlib.nullcontext()

    @property
    def delay(self) -> int:
        """Algorithmic delay (samples): the longest an input sample waits for the output
        sample it becomes, with :meth:`stream`'s chunks: chunk + hop - gcd(chunk, hop)
        (the chunk itself when it is a multiple of the hop; an incomplete hop waits for
        the next chunk). No look-ahead, apart from the one-off start of layers that read
        the first samples (see module doc)."""
        return self.chunk + self.hop_length - math.gcd(self.chunk, self.hop_length)

    @property
    def codec_out_channels(self) -> int:
        """Channels of the decoded audio."""
        return getattr(self.codec, "output_channels", self.channels)

    @torch.inference_mode()
    def __call__(self, wav: Tensor) -> Tensor:
        """``decode(encode(wav))``: the next samples in, what they complete out."""
        return self._decode(self._encode(wav))  # the encoder's codes need no check

    @torch.inference_mode()
    def flush(self) -> tuple[Tensor, Tensor]:
        """End the stream: zero-pad the pending samples to a whole hop (as ``encode``
        pads a signal's end), run them and release what layers held back.

        Returns:
            tuple[Tensor, Tensor]: the last codes (B, K', F) and waveform (B, C_out, F' hop).
        """
        x = self._samples
        x = F.pad(x, (0, -x.shape[-1] % self.hop_length))
        self._samples = x[..., :0]
        codes = self._codes[..., :0]
        if x.shape[-1] or not self._started("encoder"):
            codes = self._run_encoder(x, self.hop_length, final=True)
        pending = torch.cat((self._codes, codes), -1)
        self._codes = pending[..., :0]
        if pending.shape[-1] or not self._started("decoder"):
            wav = self._run_decoder(pending, final=True)
        else:
            wav = torch.zeros(self.batch, self.codec_out_channels, 0, device=pending.device)
        return codes, wav

    # ------------------------------------------------------------------ whole signals
    def stream(self, wav: Tensor, sync: bool = False) -> tuple[Tensor, Tensor, list[float]]:
        """Stream a whole signal from a fresh start, ``chunk`` samples at a time.

        The signal is zero-padded to a multiple of ``chunk`` (every timed step has the
        same length), then flushed.

        Args:
            wav (Tensor): (B, channels, T).
            sync (bool): synchronise the device before reading each time (CUDA).

        Returns:
            tuple[Tensor, Tensor, list[float]]: codes (B, K', ceil(T / hop)), the
            waveform (B, C_out, T) on the CPU, and the compute seconds of each chunk
            (the flush not included).
        """
        self.reset()
        t = wav.shape[-1]
        x = F.pad(wav, (0, -t % self.chunk)).to(self._samples.device)
        codes, outs, times = [], [], []
        for i in range(0, x.shape[-1], self.chunk):
            if sync:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            c = self.encode(x[..., i : i + self.chunk])
            y = self.decode(c)
            if sync:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            codes.append(c)
            outs.append(y.cpu())
        c, y = self.flush()
        codes.append(c)
        outs.append(y.cpu())
        frames = -(-t // self.hop_length)
        return torch.cat(codes, -1)[..., :frames], torch.cat(outs, -1)[..., :t], times

    # ------------------------------------------------------------------ compile
    def _compile(self, autotune: bool) -> None:
        """Compile both steps on silent chunks (errors surface here, not mid-stream;
        the second compiled chunk's states have the strides of every later one)."""
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        self._encode_compiled = torch.compile(self._encode_step, dynamic=False, fullgraph=True)
        self._decode_compiled = torch.compile(self._decode_step, dynamic=False, fullgraph=True)
        t0 = time.perf_counter()
        self.reset()
        device = self._samples.device
        options = {"freezing": True, "max_autotune": autotune}
        if device.type == "cpu":  # the C++ GEMM template; no Python between the kernels
            options.update(cpp_wrapper=True, max_autotune_gemm_backends="CPP,ATEN")
        # the compiled steps read fixed buffers: the code is specialised on input strides,
        # and a slice of a longer signal has others (a recompile, without these options)
        frames = self.chunk // self.hop_length
        self._wav_buffer = torch.zeros(self.batch, self.channels, self.chunk, device=device)
        self._codes_buffer = torch.zeros(
            self.batch, self.n_quantizers, frames, dtype=torch.long, device=device
        )
        silence = torch.zeros(self.batch, self.channels, self.chunk, device=device)
        try:
            # freezing guards the compiled code on these weights: every streamer (e.g.
            # one per precision) is one more compile of the same steps, within the limit
            limit = max(dynamo_config.recompile_limit, 64)
            # allow_rnn: trace nn.LSTM (EnCodec) instead of refusing it
            dynamo = dynamo_config.patch(recompile_limit=limit, allow_rnn=True)
            with inductor_config.patch(options), dynamo:
                with torch.inference_mode():
                    for _ in range(64):  # the start runs uncompiled; then two compiled steps
                        if self._started("encoder") and self._started("decoder"):
                            break
                        self.decode(self.encode(silence))
                    for _ in range(2):
                        self.decode(self.encode(silence))
        except Exception as e:  # torch raises several types for a failed C++ build
            text = f"{type(e).__name__}: {e}"
            if any(m in text for m in COMPILE_ERRORS):
                raise CodectkError(
                    "compiled streaming needs torch.compile with a working C++ compiler "
                    f"({text.strip().splitlines()[0][:300]}); stream without compile"
                ) from e
            raise
        self.compile_seconds = time.perf_counter() - t0
        self._warm = True


def _whole_units(pending: Tensor, new: Tensor, unit: int) -> tuple[Tensor, Tensor]:
    """Split pending + new (B, C, L) samples or frames into the whole units of ``unit``
    and the rest (kept for the next call)."""
    if pending.shape[-1] == 0 and new.shape[-1] % unit == 0:
        return new, pending  # the steady state: no copy
    x = torch.cat((pending, new), -1)
    usable = x.shape[-1] // unit * unit
    return x[..., :usable], x[..., usable:]


def _cat(parts: list[Tensor], empty: Tensor) -> Tensor:
    """Concatenate along time; one part is returned as it is, none as ``empty``."""
    return parts[0] if len(parts) == 1 else (torch.cat(parts, -1) if parts else empty)


def summarise_ms(times: list[float]) -> dict[str, float]:
    """mean, p50, p95 and max of per-chunk times (seconds), in ms."""
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
            f"chunk of {chunk_ms} ms is not a whole number of samples at {sample_rate} Hz"
        )
    return round(n)


def measure_latency(
    codec: AutoencoderCodec,
    speech: Tensor,
    chunk_ms: float,
    compile: bool = False,
    dtype: torch.dtype = torch.float32,
    warmup_s: float = 1.0,
    autotune: bool = True,
) -> dict:
    """Stream ``speech`` through ``codec`` (eval, on its device) and time every chunk,
    after streaming its first ``warmup_s`` seconds once (not timed).

    Args:
        codec (AutoencoderCodec): a causal codec.
        speech (Tensor): (channels, T) at ``codec.sample_rate``, longer than the warm-up.
        chunk_ms (float): chunk duration (ms).
        compile, dtype, autotune: see :class:`Streamer`.
        warmup_s (float): seconds streamed before the timed stream.

    Returns:
        dict: ``mean_ms``, ``p50_ms``, ``p95_ms``, ``max_ms``, ``chunk_ms``,
        ``algorithmic_delay_ms`` (:attr:`Streamer.delay`), ``rtf``, ``chunks``,
        ``threads``, ``device``, ``compiled``, ``precision`` and ``compile_s`` (compiled
        only; not in the per-chunk times).
    """
    chunk = chunk_samples(chunk_ms, codec.sample_rate)
    streamer = Streamer(codec, chunk, compile, dtype, autotune=autotune)
    device = next(codec.parameters()).device
    sync = device.type == "cuda"
    x = speech[None].to(device)  # (1, C, T)
    warm = int(warmup_s * codec.sample_rate) // chunk * chunk
    streamer.stream(x[..., :warm], sync)
    _, _, times = streamer.stream(x[..., warm:], sync)
    s = summarise_ms(times)
    return {
        **s,
        "chunk_ms": chunk_ms,
        "algorithmic_delay_ms": streamer.delay * 1000.0 / codec.sample_rate,
        "rtf": s["mean_ms"] / chunk_ms,
        "chunks": len(times),
        "threads": torch.get_num_threads(),
        "device": device.type,
        "compiled": compile,
        "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
        **({"compile_s": round(streamer.compile_seconds, 1)} if compile else {}),
    }
