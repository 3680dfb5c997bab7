"""What every codec's ``encode`` / ``decode`` accept from users, and long audio.

:class:`codectk.models.base.Codec` wraps each family's ``encode`` and ``decode`` (the
model code sees float32 tensors (B, C, T) and codes (B, K, F) only) so that callers may
pass:

* waveforms as torch tensors or numpy arrays of float32, float64, float16, bfloat16 or
  integer PCM (int16, int32, int8, uint8; :func:`codectk.io.audio.as_float_audio`), shaped
  (T,) for one mono signal or (B, C, T); they are moved to the codec's device;
* codes as tensors or numpy arrays of any integer type, shaped (K, F) or (B, K, F);
* ``bandwidth=kbps`` instead of ``n_quantizers`` (rounded down to the codec's ladder,
  :meth:`~codectk.models.base.Codec.resolve_bandwidth`);
* ``decode(codes, length=T)`` to trim the waveform to the encoded input's T samples.

Long inputs run in overlapping windows with bounded memory (as DAC's chunked
inference): frames are taken in windows of ``window_s`` seconds, each coded with
``context_s`` seconds of real signal (or codes) on either side that are then dropped,
and the windows' middles are concatenated. Once the context covers the network's
receptive field the result equals one pass over the whole input up to float rounding;
recurrent layers (the LSTMs of SoundStream and EnCodec) and attention see a bounded
past instead of all of it, and a sampling decoder (LaDiffCodec) samples each window
afresh. Windowed calls run without autograd. An input of at most ``window_s + 2
context_s`` seconds, or ``window_s=math.inf``, is coded in one pass as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import torch
from torch import Tensor

from codectk.errors import CodectkError
from codectk.io.audio import AudioFormatError, as_float_audio

#: Defaults of ``window_s`` and ``context_s`` (seconds), class attributes of Codec.
WINDOW_S = 30.0
CONTEXT_S = 1.0

_INSIDE = contextvars.ContextVar("codectk_inside_codec_call", default=False)


class CodesError(CodectkError, ValueError):
    """Codes of a type or shape a codec cannot decode; the message says what was given."""


@contextlib.contextmanager
def _inside():
    token = _INSIDE.set(True)
    try:
        yield
    finally:
        _INSIDE.reset(token)


def _device_and_dtype(codec) -> tuple[torch.device, torch.dtype]:
    """The device of the codec's parameters and the float type inputs get (float64 only
    for a codec cast to double, else float32)."""
    for p in codec.parameters():
        dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        return p.device, dtype
    return torch.device("cpu"), torch.float32


def waveform_input(codec, wav) -> Tensor:
    """``wav`` as the (B, C, T) float tensor on the codec's device that ``encode`` takes.

    Raises:
        AudioFormatError: a bad type, a 2-D or 4-D+ shape, or no samples.
    """
    device, dtype = _device_and_dtype(codec)
    x = as_float_audio(wav, dtype)
    if x.dim() == 1:
        x = x[None, None]  # (T,) -> (1, 1, T)
    elif x.dim() != 3:
        channels = getattr(codec, "channels", 1)
        raise AudioFormatError(
            f"wav must be (B, {channels}, T) or (T,), got shape {tuple(x.shape)} (a (C, T) "
            "signal: wav[None]; a (T, C) array from soundfile.read: "
            f"codectk.convert_audio(wav.T, sr, {codec.sample_rate}, {channels})[None])"
        )
    if x.shape[0] == 0 or x.shape[-1] == 0:
        raise AudioFormatError(f"waveform of shape {tuple(x.shape)} has no samples")
    return x.to(device)


def codes_input(codec, codes) -> Tensor:
    """``codes`` as a (B, K, F) int64 tensor on the codec's device.

    Raises:
        CodesError: not integer, a bad shape, or no frames.
    """
    if not isinstance(codes, Tensor):
        try:
            codes = torch.as_tensor(codes)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CodesError(f"codes of type {type(codes).__name__}: {exc}") from None
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise CodesError(f"codes must be an integer tensor (B, K, F) or (K, F), got {codes.dtype}")
    if codes.dim() == 2:
        codes = codes[None]  # (K, F) -> (1, K, F)
    if codes.dim() != 3:
        raise CodesError(f"codes must be (K, F) or (B, K, F), got shape {tuple(codes.shape)}")
    if codes.shape[0] == 0 or codes.shape[-1] == 0:
        raise CodesError(f"codes of shape {tuple(codes.shape)} have no frames")
    return codes.to(_device_and_dtype(codec)[0], torch.long)


def _frames(codec, seconds: float | None, default: float) -> float:
    seconds = default if seconds is None else seconds
    if not seconds >= 0:
        raise ValueError(f"window and context lengths must be >= 0 s, got {seconds}")
    return math.inf if math.isinf(seconds) else math.ceil(seconds * codec.frame_rate)


def _windows(n_frames: int, window: float, context: float):
    """(core start, core end, context start, context end) frame ranges, or None for
    one pass."""
    if math.isinf(window) or n_frames <= window + 2 * context:
        return None
    window = max(1, int(window))
    context = int(context)
    return [
        (a, min(a + window, n_frames), max(a - context, 0), min(a + window + context, n_frames))
        for a in range(0, n_frames, window)
    ]


def model_method(codec, name: str):
    """``codec``'s own ``encode``/``decode`` (the family's method under the user-facing
    wrapper: no input conversion, no windows), bound to ``codec``."""
    fn = getattr(type(codec), name)
    return functools.partial(getattr(fn, "__codectk_wrapped__", fn), codec)


def _spans(codec, n_frames: int, window_s: float | None, context_s: float | None):
    """:func:`_windows` of ``n_frames`` frames for a window and a context in seconds
    (None: the codec's own ``window_s``/``context_s``)."""
    return _windows(
        n_frames,
        _frames(codec, window_s, codec.window_s),
        _frames(codec, context_s, codec.context_s),
    )


def wrap_encode(raw):
    """The user-facing ``encode`` around a family's own ``encode(wav, n_quantizers)``."""

    @functools.wraps(raw)
    def encode(self, wav, n_quantizers=None, *, bandwidth=None, window_s=None, context_s=None):
        if _INSIDE.get():  # a codec calling itself or its parts: plain model code
            return raw(self, wav, n_quantizers)
        x = waveform_input(self, wav)
        if bandwidth is not None:
            if n_quantizers is not None:
                raise ValueError("give n_quantizers or bandwidth, not both")
            n_quantizers, _ = self.resolve_bandwidth(bandwidth)
        hop = self.hop_length
        n_frames = math.ceil(x.shape[-1] / hop)
        spans = _spans(self, n_frames, window_s, context_s)
        with _inside():
            if spans is None:
                return raw(self, x, n_quantizers)
            parts = []
            with torch.no_grad():
                for a, b, lo, hi in spans:
                    codes = raw(self, x[..., lo * hop : hi * hop], n_quantizers)  # (B, K, hi - lo)
                    parts.append(codes[..., a - lo : b - lo])
            return torch.cat(parts, dim=-1)

    encode.__codectk_wrapped__ = raw
    return encode


def wrap_decode(raw):
    """The user-facing ``decode`` around a family's own ``decode(codes)``."""

    @functools.wraps(raw)
    def decode(self, codes, *, length=None, window_s=None, context_s=None):
        if _INSIDE.get():
            return raw(self, codes)
        c = codes_input(self, codes)
        hop = self.hop_length
        n_frames = c.shape[-1]
        if length is not None and not 0 < length <= n_frames * hop:
            raise ValueError(
                f"length {length} samples: {n_frames} frames decode to at most "
                f"{n_frames * hop} samples"
            )
        spans = _spans(self, n_frames, window_s, context_s)
        with _inside():
            if spans is None:
                wav = raw(self, c)
            else:
                wav = None
                with torch.no_grad():
                    for a, b, lo, hi in spans:
                        y = raw(self, c[..., lo:hi])  # (B, C, (hi - lo) * hop)
                        if wav is None:  # filled in place: no second copy of the output
                            wav = y.new_empty(*y.shape[:-1], n_frames * hop)
                        wav[..., a * hop : b * hop] = y[..., (a - lo) * hop : (b - lo) * hop]
        return wav if length is None else wav[..., :length]

    decode.__codectk_wrapped__ = raw
    return decode
