"""The codec interface every model family implements (DESIGN.md, "Codec interface").

Shapes use the repo-wide letters: B batch, C channels, T samples, K codebooks,
F frames, D latent dim.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import CodectkError
from codectk.io.audio import AudioFormatError, as_float_audio, convert_audio
from codectk.io.bitstream import BitstreamError, model_identity, pack_codes, unpack_codes
from codectk.models import api
from codectk.quantization.base import Quantizer, is_float32_island
from codectk.registry import Registry

CODECS = Registry("codec")
log = logging.getLogger("codectk.models")


class BandwidthError(CodectkError, ValueError):
    """A bitrate below every bitrate a codec offers; the message lists them."""


@dataclass
class CodecOutput:
    """What ``Codec.forward`` returns during training.

    Attributes:
        wav (Tensor): reconstruction, shape (B, 1, T), same T as the input.
        codes (Tensor): LongTensor (B, K', F) for the K' codebooks used in this step.
        commitment_loss (Tensor): scalar, encoder-to-codebook commitment (VQ-VAE eq. 3).
        codebook_loss (Tensor): scalar, codebook-to-encoder loss (0 with EMA codebooks).
        n_quantizers (int): K' used (quantizer dropout samples it during training).
        extras (dict): model-specific tensors for logging.
        losses (dict[str, Tensor]): model-internal loss terms, already weighted, that the
            trainer adds to the generator objective and logs as ``g_<name>`` (e.g. a
            diffusion model's denoising loss, a pre-training phase's latent loss).
    """

    wav: Tensor
    codes: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    n_quantizers: int
    extras: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)


class Codec(nn.Module):
    """Base class of the neural codecs.

    Subclasses set in ``__init__``: ``sample_rate`` (Hz), ``hop_length`` (samples per
    frame = product of encoder strides), ``n_codebooks`` (K, the most codebooks),
    ``codebook_size`` (entries per codebook), and implement ``encode``, ``decode`` and
    ``forward``. The numbers of codebooks a codec offers (:attr:`valid_n_quantizers`, the
    ladder) are its ``quantizer``'s (:class:`codectk.quantization.base.Quantizer`); the
    bitrates, their resolution and the codes check derive from them.
    """

    sample_rate: int
    hop_length: int
    n_codebooks: int
    codebook_size: int
    channels: int = 1
    #: seconds per window and of context on either side when ``encode`` / ``decode``
    #: run long inputs in windows (:mod:`codectk.models.api`); ``math.inf``: one pass.
    window_s: float = api.WINDOW_S
    context_s: float = api.CONTEXT_S

    def __init_subclass__(cls, **kwargs):
        """Wrap each family's own ``encode`` / ``decode`` (plain tensors) in the
        user-facing ones of :mod:`codectk.models.api` (numpy, integer PCM, float64,
        (T,) shapes, ``bandwidth=``, ``length=``, long inputs in windows)."""
        super().__init_subclass__(**kwargs)
        for name, wrap in (("encode", api.wrap_encode), ("decode", api.wrap_decode)):
            fn = cls.__dict__.get(name)
            if fn is not None and not hasattr(fn, "__codectk_wrapped__"):
                setattr(cls, name, wrap(fn))

    @property
    def frame_rate(self) -> float:
        """Code frames per second (Hz)."""
        return self.sample_rate / self.hop_length

    def bitrate(self, n_quantizers: int | None = None) -> float:
        """Nominal bitrate in kbps when ``n_quantizers`` codebooks are used (default all)."""
        n = self.n_codebooks if n_quantizers is None else n_quantizers
        return n * math.log2(self.codebook_size) * self.frame_rate / 1000.0

    @property
    def valid_n_quantizers(self) -> list[int]:
        """The ladder: numbers of codebooks K' the codec encodes with, ascending (its
        quantizer's; 1..K for a codec without a :class:`Quantizer`)."""
        q = getattr(self, "quantizer", None)
        if isinstance(q, Quantizer):
            return q.valid_n_quantizers
        return list(range(1, self.n_codebooks + 1))

    @property
    def codebooks_per_stream(self) -> int:
        """Consecutive codebooks selected together as one step of the ladder (ESC's
        product-VQ streams, a GRVQ stage of every group; 1 otherwise); decoding records it
        in ``codes.json`` so that scoring reports per-stream usage."""
        q = getattr(self, "quantizer", None)
        return q.codebooks_per_step if isinstance(q, Quantizer) else 1

    @property
    def bandwidths(self) -> list[float]:
        """The selectable bitrates in kbps, one per entry of :attr:`valid_n_quantizers`."""
        return [self.bitrate(n) for n in self.valid_n_quantizers]

    def n_quantizers_for_bandwidth(self, kbps: float | None) -> int:
        """Number of codebooks giving exactly bitrate ``kbps`` (None: all); configs use
        this. Users' target bitrates go through :meth:`resolve_bandwidth`.

        Raises:
            ValueError: ``kbps`` is not one of :attr:`bandwidths`.
        """
        if kbps is None:
            return self.n_codebooks
        for n, b in zip(self.valid_n_quantizers, self.bandwidths):
            if math.isclose(b, kbps, rel_tol=1e-3, abs_tol=1e-3):
                return n
        choices = [round(b, 3) for b in self.bandwidths]
        raise ValueError(f"bandwidth {kbps} kbps not supported; choose one of {choices}")

    def resolve_bandwidth(self, kbps: float | None) -> tuple[int, float]:
        """The highest bitrate of :attr:`bandwidths` not above a target (EnCodec users'
        habit: ``6`` on a 1.5/3/6/12/24 kbps model is 6, ``8`` is 6). A target off the
        ladder is rounded down with a warning naming the bitrate used.

        Args:
            kbps (float | None): target bitrate in kbps (None: all codebooks).

        Returns:
            tuple[int, float]: (number of codebooks for :meth:`encode`, bitrate in kbps).

        Raises:
            BandwidthError: ``kbps`` below the lowest bitrate, or not a positive number;
                the message lists the ladder.
        """
        ladder = self.bandwidths
        if kbps is None:
            return self.n_quantizers_for_bandwidth(None), ladder[-1]
        choices = [round(b, 3) for b in ladder]
        try:
            kbps = float(kbps)
        except (TypeError, ValueError):
            kbps = math.nan
        fits = [b for b in ladder if b <= kbps or math.isclose(b, kbps, rel_tol=1e-3, abs_tol=1e-3)]
        if not fits:
            raise BandwidthError(
                f"bandwidth {kbps:g} kbps is below the lowest bitrate of this "
                f"{type(self).__name__}; choose one of {choices} kbps (higher values are "
                "rounded down to these)"
            )
        chosen = max(fits)
        n = self.n_quantizers_for_bandwidth(chosen)
        if not math.isclose(chosen, kbps, rel_tol=1e-3, abs_tol=1e-3):
            log.warning(
                "bandwidth %g kbps is not one of %s: using %.3f kbps (%d codebooks), the "
                "nearest below",
                kbps,
                choices,
                chosen,
                n,
            )
        return n, chosen

    def low_precision_modules(self) -> list[str]:
        """Names of the submodules that :meth:`set_inference_dtype` may run in a low
        precision (never a float32 island; islands inside them stay float32). The
        default: none (the codec stays in float32)."""
        return []

    def set_inference_dtype(self, dtype: torch.dtype) -> None:
        """Run the bulk of inference in ``dtype`` (``torch.bfloat16``), in place.

        The submodules named by :meth:`low_precision_modules` get their parameters and
        buffers cast to ``dtype`` and their ``forward`` wrapped to cast floating-point
        inputs to ``dtype`` and floating-point outputs back to float32, so everything
        else (codebook search and lookup, STFT front ends) stays float32. Float32 islands
        (:func:`codectk.quantization.base.is_float32_island`: every quantizer) are never
        cast, also inside a named module, where their outputs are cast to ``dtype``. Convolutions
        and matrix products then accumulate in float32 from bfloat16 operands (up to 2x
        the float32 throughput on CPUs with AVX-512 BF16 or AMX, and on GPUs; the
        measured times are in docs/benchmarks.md, suites ``codecs`` and ``esc``), at the
        cost of a
        model-dependent waveform error (25 to 45 dB SNR measured) and code flips near
        codebook ties (47% of the codes of the demo's tiny SoundStream): a lossy,
        inference-only, opt-in mode (``codectk decode --precision bf16``). Setting
        float32 again casts the weights back, but they keep their bfloat16 rounding.

        Raises:
            ValueError: ``dtype`` is not a floating-point type, the codec names no
                low-precision modules, or it names a float32 island.
        """
        if not dtype.is_floating_point:
            raise ValueError(f"inference dtype must be floating point, got {dtype}")
        names = self.low_precision_modules()
        if dtype != torch.float32 and not names:
            raise ValueError(f"{type(self).__name__} has no modules to run in {dtype}")
        islands = [n for n in names if is_float32_island(self.get_submodule(n))]
        if islands:
            raise ValueError(f"{islands} of {type(self).__name__} are float32 islands")
        for name in names:
            module = self.get_submodule(name)
            _set_dtype(module, dtype, torch.float32)

    def on_train_step(self, step: int) -> None:
        """Called by the trainer before training step ``step`` (1-based), also after a
        resume: the place for step-dependent phases (pre-training without quantization,
        freezing the encoder from step N). The default does nothing."""

    def check_codes(self, codes: Tensor) -> None:
        """Raise ``ValueError`` unless ``codes`` is a (B, K', F) integer tensor within range,
        K' one of :attr:`valid_n_quantizers`."""
        if codes.dim() != 3 or codes.dtype not in (torch.int64, torch.int32, torch.int16):
            raise ValueError(f"codes must be an integer tensor (B, K, F), got {tuple(codes.shape)}")
        k, ladder, g = codes.shape[1], self.valid_n_quantizers, self.codebooks_per_stream
        if not 1 <= k <= self.n_codebooks:
            raise ValueError(f"codes have {k} codebooks; this codec has 1 to {self.n_codebooks}")
        if k not in ladder and len(ladder) == 1:
            name = type(self).__name__
            raise ValueError(f"codes have {k} codebooks; this {name} decodes {ladder[0]}")
        if k not in ladder:
            unit = getattr(getattr(self, "quantizer", None), "step_name", "step")
            why = f", not a multiple of the {g} codebooks per {unit}" if g > 1 else ""
            raise ValueError(
                f"codes have {k} codebooks{why}: n_quantizers {k} not supported; choose one "
                f"of {ladder}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"code values must lie in [0, {self.codebook_size})")

    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Encode a waveform.

        What a family implements sees (B, C, T) float tensors. Callers may also pass,
        keyword-only, ``bandwidth=kbps`` (rounded down, :meth:`resolve_bandwidth`),
        ``window_s`` / ``context_s`` (long inputs in windows, :mod:`codectk.models.api`),
        and any waveform :func:`codectk.models.api.waveform_input` takes.

        Args:
            wav (Tensor | np.ndarray): (B, C, T) or (T,), float in [-1, 1] (float32,
                float64, float16, bfloat16) or integer PCM (int16, int32, int8, uint8),
                at ``sample_rate`` Hz (:func:`codectk.convert_audio` converts); T need
                not be a multiple of ``hop_length`` (it is right-padded).
            n_quantizers (int | None): codebooks to use, 1..K (None: all K).

        Returns:
            Tensor: codes, LongTensor (B, K', F) with F = ceil(T / hop_length), on the
            codec's device.

        Raises:
            AudioFormatError: a bad type or shape, or no samples.
            BandwidthError: a ``bandwidth`` below the lowest one.
        """
        raise NotImplementedError

    def decode(self, codes: Tensor) -> Tensor:
        """Decode codes (B, K', F) to a waveform (B, C, F * hop_length).

        Keyword-only extras: ``length=T`` trims the output to the encoded input's T
        samples; ``window_s`` / ``context_s`` as :meth:`encode`. Codes may be a tensor
        or numpy array of any integer type, (B, K', F) or (K', F).

        Raises:
            CodesError: codes that are not integers, of a bad shape or without frames.
            ValueError: codes out of range; ``length`` above F * hop_length.
        """
        raise NotImplementedError

    def compress(self, wav, sample_rate: int | None = None, bandwidth: float | None = None):
        """Encode one signal to the bytes of a ``.ctk`` file (docs/bitstream.md).

        Args:
            wav (Tensor | np.ndarray): (T,) or (C, T), any type :meth:`encode` takes.
            sample_rate (int | None): its rate in Hz (None: ``sample_rate``). Another
                rate, or another channel count than ``channels``, is converted with
                :func:`codectk.convert_audio`.
            bandwidth (float | None): target kbps, rounded down (None: all codebooks).

        Returns:
            bytes: header (model identity, rates, length in samples) and packed codes;
            :meth:`decompress` of the same model restores the length.

        Raises:
            AudioFormatError, BandwidthError: as :meth:`encode`.
        """
        x = as_float_audio(wav)
        if x.dim() not in (1, 2):
            raise AudioFormatError(
                f"compress takes one signal (T,) or (C, T), got {tuple(x.shape)}"
            )
        x = x if x.dim() == 2 else x[None]  # (T,) -> (1, T)
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate != self.sample_rate or x.shape[0] != self.channels:
            x = convert_audio(x, rate, self.sample_rate, self.channels)  # (C, T')
        x = api.waveform_input(self, x[None])  # (1, C, T) on the codec's device
        with torch.inference_mode():
            codes = self.encode(x, bandwidth=bandwidth)  # (1, K', F)
        header = {
            "model_id": self.identity(),
            "codec": type(self).__name__,
            "sample_rate": int(self.sample_rate),
            "hop_length": int(self.hop_length),
            "codebook_size": int(self.codebook_size),
            "length": int(x.shape[-1]),
        }
        return pack_codes(codes[0].cpu().numpy(), header)

    def decompress(self, data: bytes) -> Tensor:
        """Decode the bytes of a ``.ctk`` file written with this model.

        Returns:
            Tensor: float32 waveform (C, T) at ``sample_rate`` Hz, T the encoded length.

        Raises:
            BitstreamError: corrupt data, or data of another model.
        """
        header, codes = unpack_codes(data)
        if header["model_id"] != self.identity():
            raise BitstreamError(
                f"encoded with model {header['model_id']} ({header['codec']}), not this "
                f"{type(self).__name__} ({self.identity()}); decode with the same model"
            )
        with torch.inference_mode():
            wav = self.decode(np.ascontiguousarray(codes), length=header["length"])
        return wav[0].float()

    def identity(self) -> str:
        """:func:`codectk.io.bitstream.model_identity` of the current weights (cached until
        a parameter or buffer changes)."""
        key = tuple((t.data_ptr(), t._version) for t in self.state_dict().values())
        cached = self.__dict__.get("_identity_cache")
        if cached is None or cached[0] != key:
            cached = (key, model_identity(self))
            self.__dict__["_identity_cache"] = cached
        return cached[1]

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """Training pass: encode, quantize (with quantizer dropout in training mode), decode.

        Args:
            wav (Tensor): (B, 1, T).
            n_quantizers (int | None): fixed K' (None: sampled in training, all in eval).
        """
        raise NotImplementedError


def _set_dtype(module: nn.Module, dtype: torch.dtype, out_dtype: torch.dtype) -> None:
    """Cast ``module`` to ``dtype`` with its ``forward`` taking ``dtype`` in and giving
    ``out_dtype`` out (unwrapped again for float32); float32 islands inside keep float32
    and give ``dtype`` out."""
    if is_float32_island(module):
        _wrap_forward(module, torch.float32, dtype)
        return
    module._apply(lambda t: t.to(dtype) if t.is_floating_point() else t, recurse=False)
    _wrap_forward(module, dtype, out_dtype)
    for child in module.children():
        if is_float32_island(child) or any(is_float32_island(m) for m in child.modules()):
            _set_dtype(child, dtype, dtype)
        else:
            child.to(dtype)


def _wrap_forward(module: nn.Module, dtype: torch.dtype, out_dtype: torch.dtype) -> None:
    forward = getattr(module.forward, "__wrapped_forward__", module.forward)
    if dtype == out_dtype == torch.float32:
        module.forward = forward
    else:
        module.forward = _cast_io(forward, dtype, out_dtype)


def _cast_io(forward, dtype: torch.dtype, out_dtype: torch.dtype = torch.float32):
    """``forward`` with floating-point tensor arguments cast to ``dtype`` and
    floating-point tensor results cast to ``out_dtype``."""

    def cast(x, to):
        if isinstance(x, Tensor) and x.is_floating_point() and x.dtype != to:
            return x.to(to)
        if isinstance(x, tuple):
            return tuple(cast(v, to) for v in x)
        if isinstance(x, list):
            return [cast(v, to) for v in x]
        return x

    def wrapped(*args, **kwargs):
        args = cast(args, dtype)
        kwargs = {k: cast(v, dtype) for k, v in kwargs.items()}
        return cast(forward(*args, **kwargs), out_dtype)

    wrapped.__wrapped_forward__ = forward
    return wrapped


class AutoencoderCodec(Codec):
    """A codec built as encoder -> quantizer -> decoder (every family here).

    Subclasses build an ``encoder`` (waveform (B, C, T') -> latent (B, D, F)), a
    ``quantizer`` (``forward/encode/decode`` with codes (B, K, F), see
    :class:`codectk.quantization.rvq.ResidualVectorQuantizer`) and a ``decoder`` (latent
    (B, D, F) -> waveform (B, C, F * hop_length)), hand them to :meth:`assemble`, which
    derives the codec's facts, and may override:

    * :meth:`latent` / :meth:`synthesise` for a front end (e.g. FreqCodec's STFT).

    Quantizer dropout (SoundStream's, EnCodec's target bandwidths, FunCodec's choices,
    DAC's per example) is the quantizer's policy
    (:class:`codectk.quantization.dropout.QuantizerDropout`).
    """

    def assemble(
        self,
        sample_rate: int,
        channels: int = 1,
        hop_length: int | None = None,
        **parts: nn.Module,
    ) -> None:
        """Register the parts and derive the codec's facts from them, once.

        Args:
            sample_rate (int): Hz.
            channels (int): audio channels C.
            hop_length (int | None): samples per code frame (None: the encoder's
                ``hop_length``).
            **parts: ``encoder``, ``quantizer``, ``decoder`` (and any other part), set as
                attributes in the order given: that order is the order of the parameters,
                which optimizer states in checkpoints follow, so a family keeps its own.

        Raises:
            ValueError: ``channels`` < 1, a missing encoder, quantizer or decoder, or no
                hop length.
        """
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        missing = {"encoder", "quantizer", "decoder"} - set(parts)
        if missing:
            raise ValueError(f"an autoencoder codec needs parts {sorted(missing)}")
        for name, part in parts.items():
            setattr(self, name, part)
        hop_length = hop_length or getattr(parts["encoder"], "hop_length", None)
        if not hop_length:
            raise ValueError("give hop_length: the encoder has no hop_length attribute")
        self.sample_rate = sample_rate
        self.channels = channels
        self.hop_length = int(hop_length)
        self.n_codebooks = self.quantizer.n_codebooks
        self.codebook_size = self.quantizer.codebook_size

    def low_precision_modules(self) -> list[str]:
        """The encoder and the decoder (the quantizer stays float32)."""
        return ["encoder", "decoder"]

    def pad(self, wav: Tensor) -> Tensor:
        """Check (B, channels, T) and right-pad T with zeros to a multiple of hop_length.

        Raises:
            ValueError: for a wav that is not (B, channels, T).
        """
        if wav.dim() != 3 or wav.shape[1] != self.channels:
            raise ValueError(f"wav must be (B, {self.channels}, T), got {tuple(wav.shape)}")
        extra = -wav.shape[-1] % self.hop_length
        return F.pad(wav, (0, extra)) if extra else wav

    def latent(self, wav: Tensor) -> Tensor:
        """Waveform (B, channels, T) -> continuous latent (B, D, ceil(T / hop_length))."""
        return self.encoder(self.pad(wav))

    def synthesise(self, z_q: Tensor) -> Tensor:
        """Quantised latent (B, D, F) -> waveform (B, channels, F * hop_length)."""
        return self.decoder(z_q)

    def training_n_quantizers(self, device: torch.device) -> int | None:
        """K' that the quantizer's dropout policy draws for a training batch (None: it
        has no policy, or draws per example); ``forward`` lets the quantizer draw."""
        d = getattr(self.quantizer, "dropout", None)
        if d is None or d.per_example:
            return None
        return self.quantizer.sample_n_quantizers(1, device)[0]

    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """See :meth:`Codec.encode`; never updates the codebooks (works under inference_mode).

        Raises:
            ValueError: for a wav that is not (B, channels, T) or a bad ``n_quantizers``.
        """
        return self.quantizer.encode(self.latent(wav), n_quantizers)  # a float32 island

    def decode(self, codes: Tensor) -> Tensor:
        """See :meth:`Codec.decode`.

        Raises:
            ValueError: from :meth:`check_codes` for a bad shape, dtype or value.
        """
        self.check_codes(codes)
        return self.synthesise(self.quantizer.decode(codes.long()))

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """See :meth:`Codec.forward`: ``wav`` of the output is trimmed to the input's T.

        Raises:
            ValueError: for a wav that is not (B, channels, T) or a bad ``n_quantizers``.
        """
        length = wav.shape[-1]
        z = self.latent(wav)  # (B, D, F)
        q = self.quantizer(z, n_quantizers)  # a float32 island; draws its dropout
        return CodecOutput(
            wav=self.synthesise(q.z_q)[..., :length],
            codes=q.codes,
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
            n_quantizers=q.n_quantizers,
            extras=self.output_extras(q),
        )

    def output_extras(self, q) -> dict:
        """Model-specific tensors of a quantizer output to log (``CodecOutput.extras``)."""
        return {}
