"""1-D convolutions with weight normalisation, "same-rate" padding and streaming.

The padding follows EnCodec's ``SConv1d`` / ``SConvTranspose1d`` (Défossez et al., "High
Fidelity Neural Audio Compression", 2022, §3.1) so that a stride-``s`` convolution maps
T samples to exactly F = ceil(T / s) frames, and a stride-``s`` transposed convolution maps
F frames to exactly F * s samples. AudioDec's causal layers (Wu et al., "AudioDec",
ICASSP 2023, §2.1) are the same classes with other padding options
(:func:`CausalConv1d`, :func:`CausalConvTranspose1d`).

Padding math for :class:`SConv1d`, with effective kernel k = (kernel_size - 1) * dilation + 1
and stride s:

* Causal: P zeros on the left, P = k - s (``causal_padding="k-s"``: EnCodec, SoundStream;
  k >= s required) or P = k - 1 (``"k-1"``: AudioDec). Output frame f is the window of
  padded samples [f s, f s + k), i.e. the input samples [f s - P, f s + k - 1 - P]: up to
  f s + s - 1 ("k-s") or f s ("k-1"), nothing later. Then ``extra`` = max(0,
  (ceil(T / s) - 1) s + k - P - T) zeros on the right complete the last window (always 0
  for "k-1"; ceil(T / s) s - T for "k-s"), so the output has ceil(T / s) frames.
  ``causal_pad_mode`` "reflect" / "replicate" fill the left padding from the first
  samples instead (the authors' EnCodec reflect-pads, so its released weights are
  reproduced only that way; the first frames then see up to P future samples).
* Non-causal: ``padding_total = k - s``, ``padding_total // 2`` on the right (plus
  ``extra`` = ceil(T / s) s - T), the rest on the left, with ``pad_mode`` ("reflect" as
  in EnCodec, or "constant" for zeros).

For :class:`SConvTranspose1d` (kernel k >= s) the raw output has (F - 1) * s + k samples;
the ``padding_total = k - s`` surplus is trimmed: all on the right when causal
(``trim_right_ratio`` = 1), half on each side (the extra one on the left) otherwise.
Causal output sample n mixes frames floor(n / s) - n_pad .. floor(n / s), n_pad =
ceil(k / s) - 1. Equivalently, the input is left-padded with n_pad frames -- zero frames
(``causal_pad_mode="constant"``, EnCodec's trim) or copies of the first frame
("replicate", AudioDec) -- and the output samples [n_pad s, (n_pad + F) s) are kept.

Streaming (:mod:`codectk.nn.streaming`): ``forward_chunk(x, state)`` of a causal layer
takes a chunk whose length is a multiple of its stride (one stride at every layer when a
codec is fed whole hops). The conv's state is the last P samples of its padded input
(the zero padding at the start), so a chunk of L samples gives L / s frames; the
transposed conv's is its last n_pad input frames, and a chunk of F frames gives F s
samples. Replicate / reflect padding at the start makes the state a pair (samples,
samples seen): a conv waits for its first P + 1 samples (reflect) or 1 (replicate)
before it emits, the transposed conv copies its first frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from codectk.errors import check_choice
from codectk.nn.conv_kernels import (
    PackedWeights,
    cached_weight4,
    channels_last_weight,
    conv1d_gemm,
    conv1d_time_major,
    onednn_packs,
    pointwise_conv,
    weight_cache_key,
)
from codectk.nn.streaming import State, StreamingModule, streaming

__all__ = [
    "CausalConv1d",
    "CausalConvTranspose1d",
    "Conv1x1",
    "PackedWeights",
    "SConv1d",
    "SConvTranspose1d",
    "conv1d_gemm",
    "conv1d_time_major",
    "extra_padding_for_conv1d",
    "onednn_packs",
    "pad1d",
    "pointwise_conv",
    "remove_weight_norm_",
]

_PAD_MODES = ("reflect", "constant", "replicate")
_CAUSAL_PADDINGS = ("k-s", "k-1")


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding needed so that a strided conv covers the last input sample.

    Args:
        length (int): input length T (samples).
        kernel_size (int): effective kernel size k (dilation included).
        stride (int): stride s.
        padding_total (int): fixed padding, k - s.

    Returns:
        int: number of extra samples to append on the right so that the output has
        ceil((T - k + padding_total) / s + 1) frames with every window complete.
    """
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: Tensor, paddings: tuple[int, int], mode: str = "constant") -> Tensor:
    """Pad the last axis of ``x``, allowing reflect padding of inputs shorter than the pad.

    Args:
        x (Tensor): (B, C, T).
        paddings (tuple[int, int]): (left, right) samples, both >= 0.
        mode (str): one of "reflect", "constant" (zeros), "replicate".

    Returns:
        Tensor: (B, C, T + left + right).

    Raises:
        ValueError: for a negative padding or an unknown mode.
    """
    left, right = paddings
    if left < 0 or right < 0:
        raise ValueError(f"paddings must be >= 0, got {paddings}")
    check_choice("pad mode", mode, _PAD_MODES)
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    length = x.shape[-1]
    max_pad = max(left, right)
    extra = max(0, max_pad - length + 1)  # reflect needs T > pad; zero-extend first
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra]


def _plain(x: Tensor) -> bool:
    """Whether a layer runs its plain PyTorch module: with gradients (training), or on a
    device other than the CPU (the polyphase and padding-free forms are CPU inference
    paths)."""
    return torch.is_grad_enabled() or x.device.type != "cpu"


def _fast_padding_applies(x: Tensor, left: int, right: int, mode: str, kernel: int) -> bool:
    """Whether :meth:`SConv1d._conv_fast` reproduces ``conv(pad1d(x, (left, right), mode))``:
    constant or reflect padding, no more on the right than on the left, and an input
    long enough that the recomputed head and tail windows do not overlap."""
    if mode not in ("constant", "reflect") or right > left:
        return False
    return x.shape[-1] > 2 * (kernel + left + right)


class Conv1x1(nn.Conv1d):
    """A 1x1 ``nn.Conv1d`` (same parameters) whose inference is a matrix product over
    time-major rows (:func:`pointwise_conv`): (B, C_in, T) -> (B, C_out, T).

    Args:
        in_channels (int), out_channels (int), bias (bool): as ``nn.Conv1d``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 1, bias=bias)
        self._packs = PackedWeights()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, T) (T = 0 included)."""
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.out_channels, 0)
        if torch.compiler.is_compiling() and not torch.is_grad_enabled():
            return conv1d_gemm(x, self.weight, self.bias)
        if not onednn_packs(x, self):
            return super().forward(x)
        return pointwise_conv(x, self._packs.matrix(self.weight), self.bias)


class SConv1d(StreamingModule):
    """Weight-normalised Conv1d whose output has ceil(T / stride) frames (see module doc).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): kernel size (samples).
        stride (int): stride; must not exceed the effective kernel size, except for
            causal convolutions with ``causal_padding="k-1"``.
        dilation (int): dilation.
        groups (int): convolution groups.
        bias (bool): learn an additive bias.
        causal (bool): pad only on the left, so output frame f sees inputs up to
            f * stride + stride - 1 ("k-s") or f * stride ("k-1").
        pad_mode (str): padding of the non-causal convolution ("reflect", "constant",
            "replicate").
        weight_norm (bool): reparametrise the weight as g * v / ||v|| (Salimans & Kingma,
            2016) with ``torch.nn.utils.parametrizations.weight_norm``.
        group_norm (bool): apply ``GroupNorm(1, out_channels)`` to the output (EnCodec's
            "time_group_norm", used by its non-causal 48 kHz model; it cannot stream).
        causal_pad_mode (str): left padding of the causal convolution: "constant" (zeros,
            strictly causal) or "reflect" / "replicate" (the authors' EnCodec pads with
            ``pad_mode``, so the first frames see up to P future samples).
        causal_padding (str): left padding P of the causal convolution: "k-s" (effective
            kernel minus stride: EnCodec, SoundStream) or "k-1" (effective kernel minus
            one: AudioDec).

    Raises:
        ValueError: if stride exceeds the effective kernel size ("k-s" and non-causal),
            for an unknown pad mode or causal padding, or a causal padding other than
            "k-s" on a non-causal convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = False,
        pad_mode: str = "reflect",
        weight_norm: bool = True,
        group_norm: bool = False,
        causal_pad_mode: str = "constant",
        causal_padding: str = "k-s",
    ):
        super().__init__()
        if min(kernel_size, stride, dilation) < 1:
            raise ValueError(
                f"kernel_size {kernel_size}, stride {stride}, dilation {dilation} must be >= 1"
            )
        check_choice("causal_padding", causal_padding, _CAUSAL_PADDINGS)
        if not causal and causal_padding != "k-s":
            raise ValueError(f"causal_padding {causal_padding!r} needs causal=True")
        effective = (kernel_size - 1) * dilation + 1
        if stride > effective and causal_padding == "k-s":
            raise ValueError(f"stride {stride} exceeds the effective kernel size {effective}")
        for mode in (pad_mode, causal_pad_mode):
            check_choice("pad mode", mode, _PAD_MODES)
        conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.conv = _weight_norm(conv) if weight_norm else conv
        self.norm: nn.Module = nn.GroupNorm(1, out_channels) if group_norm else nn.Identity()
        self.causal = causal
        self.pad_mode = pad_mode
        self.causal_pad_mode = causal_pad_mode
        self.causal_padding = causal_padding
        self.stride = stride
        self.effective_kernel_size = effective
        # P: the causal left padding (samples)
        self.left_padding = effective - (1 if causal_padding == "k-1" else stride)
        self._weight4_cache: tuple | None = None
        self._packs = PackedWeights()
        self._stream_error = (
            "a non-causal convolution cannot stream"
            if not causal
            else "time-wise group norm reads the whole signal: it cannot stream"
            if group_norm
            else None
        )

    def _weight4(self) -> Tensor:
        """The weight as a channels-last 2-D weight (cached while the weight is unchanged)."""
        return cached_weight4(self, self.conv)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve (inside :func:`~codectk.nn.streaming.stream_step`: the next chunk).

        Args:
            x (Tensor): (B, C_in, T).

        Returns:
            Tensor: (B, C_out, ceil(T / stride)).
        """
        if streaming():
            return self.stream(x)
        k, s = self.effective_kernel_size, self.stride
        if self.causal:
            left, mode = self.left_padding, self.causal_pad_mode
            right = max(0, (-(-x.shape[-1] // s) - 1) * s + k - left - x.shape[-1])
        else:
            padding_total = k - s
            extra = extra_padding_for_conv1d(x.shape[-1], k, s, padding_total)
            right = padding_total // 2
            left, right, mode = padding_total - right, right + extra, self.pad_mode
        fast = not torch.is_grad_enabled() and x.device.type == "cpu"  # a CPU inference path
        if fast and _fast_padding_applies(x, left, right, mode, k):
            return self.norm(self._conv_fast(x, left, right, mode))
        return self.norm(self.conv(pad1d(x, (left, right), mode=mode)))

    # ------------------------------------------------------------------ streaming
    def check_streamable(self) -> None:
        """Raise ``ValueError`` for a non-causal or group-normalised convolution."""
        if self._stream_error:
            raise ValueError(self._stream_error)

    def _start_need(self) -> int:
        """Samples needed before the first frame (0: zero padding, no wait)."""
        mode = self.causal_pad_mode
        return 0 if mode == "constant" else (1 if mode == "replicate" else self.left_padding + 1)

    def init_state(self, batch: int) -> State:
        """(B, C_in, P) zeros, time-major in memory (the left padding); with replicate /
        reflect padding, paired with the number of samples seen (0)."""
        p = next(self.parameters())
        c_in = self.conv.in_channels
        buf = torch.zeros(batch, self.left_padding, c_in, dtype=p.dtype, device=p.device)
        buf = buf.transpose(1, 2)  # (B, P, C) -> (B, C, P) view, time-major
        return buf if self._start_need() == 0 else (buf, 0)

    def started(self, state: State) -> bool:
        """Whether the stream is past its start (always, for zero padding)."""
        return self._start_need() == 0 or state[1] >= self._start_need()

    def forward_chunk(self, x: Tensor, state: State, final: bool = False) -> tuple[Tensor, State]:
        """Convolve the next chunk of a stream.

        Args:
            x (Tensor): (B, C_in, L), L a multiple of the stride.
            state: from :meth:`init_state` or the previous chunk.
            final (bool): the stream ends here: a reflect-padded layer still waiting for
                its first P + 1 samples starts with what it has (as ``forward`` pads a
                short signal).

        Returns:
            tuple[Tensor, State]: (B, C_out, L / stride) frames (fewer while a reflect /
            replicate layer waits at the start, then those held back) and the state.

        Raises:
            ValueError: a layer that cannot stream, or L not a multiple of the stride.
        """
        if self._stream_error:
            raise ValueError(self._stream_error)
        s, p = self.stride, self.left_padding
        if x.shape[-1] % s:
            raise ValueError(f"chunk of {x.shape[-1]} samples is not a multiple of the stride {s}")
        need = self._start_need()
        if need == 0 or state[1] >= need:  # the steady state: [P held samples; chunk]
            buf = state if need == 0 else state[0]
            if x.shape[-1] == 0:
                return self._empty(x), state
            full = _cat_time(buf, x)  # (B, C_in, P + L)
            held = _tail(full, p)
            return self._conv_valid(full), (held if need == 0 else (held, need))
        buf, seen = state
        full = _cat_time(buf[..., p - seen :], x) if seen else x  # the samples so far
        n = full.shape[-1]
        if n < need and not (final and n):
            grown = torch.cat((buf[..., : p - n], full), -1) if n < p else full
            return self._empty(x), (_tail(grown, p), n)
        padded = pad1d(full, (p, 0), mode=self.causal_pad_mode)  # the stream's start
        return self._conv_valid(padded), (_tail(_cat_time(buf, full), p), need)

    def _empty(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.conv.out_channels, 0)

    def _conv_valid(self, x: Tensor) -> Tensor:
        """Convolution without padding: (B, C_in, T) -> (B, C_out, (T - k) // s + 1);
        without gradients on the time-major path with weights packed once
        (:class:`PackedWeights`), under ``torch.compile`` as one matrix product
        (:func:`conv1d_gemm`)."""
        conv = self.conv
        d, g = conv.dilation[0], conv.groups
        if torch.is_grad_enabled():
            return conv(x)
        if torch.compiler.is_compiling():
            return conv1d_gemm(x, conv.weight, conv.bias, self.stride, d, g)
        if not onednn_packs(x, conv):
            return conv1d_time_major(x, self._weight4(), conv.bias, self.stride, 0, d, g)
        w = conv.weight
        if conv.kernel_size[0] == 1 and self.stride == 1 and g == 1:
            return pointwise_conv(x, self._packs.matrix(w), conv.bias)
        packed = self._packs.conv(w, x, self.stride, d, g)
        return conv1d_time_major(x, None, conv.bias, self.stride, 0, d, g, packed)

    def _conv_fast(self, x: Tensor, left: int, right: int, mode: str) -> Tensor:
        """Inference path: the same output as ``conv(pad1d(x))`` without copying ``x``.

        The convolution zero-pads by ``left`` on both sides internally (``right <= left``)
        and the frames beyond ``ceil(T / stride)`` are dropped; with reflect padding, the
        few frames whose windows reach into the padding are then recomputed from the
        reflect-padded ends of ``x`` (a window is ``k`` samples, so at most
        ``ceil(left / stride)`` frames at the start and ``ceil(right / stride)`` at the end).

        Args:
            x (Tensor): (B, C_in, T), with T > k + left + right.
            left (int), right (int): padding of the reference computation (samples).
            mode (str): "constant" or "reflect".

        Returns:
            Tensor: (B, C_out, (T + left + right - k) // stride + 1).
        """
        conv, k, s = self.conv, self.effective_kernel_size, self.stride
        length = x.shape[-1]
        n_out = (length + left + right - k) // s + 1
        weight, bias = self._weight4(), conv.bias
        args = (s, 0, conv.dilation[0], conv.groups)
        y = conv1d_time_major(x, weight, bias, s, left, conv.dilation[0], conv.groups)
        y = y[..., :n_out]
        if mode == "constant":
            return y
        if left:  # frames f with f * s < left see reflected samples
            n_head = -(-left // s)
            end = max((n_head - 1) * s + k - left, left + 1)  # reflection reads x[1..left]
            head = pad1d(x[..., :end], (left, 0), mode)
            y[..., :n_head] = conv1d_time_major(head, weight, bias, *args)[..., :n_head]
        if right:  # frames from ``first`` on end past the last sample
            first = (left + length - k) // s + 1
            # start the tail at a frame boundary that leaves > right samples to reflect
            back = max(0, -(-(first * s - left - (length - right - 1)) // s))
            start = (first - back) * s - left
            tail = pad1d(x[..., start:], (0, right), mode)
            y[..., first:] = conv1d_time_major(tail, weight, bias, *args)[
                ..., back : back + n_out - first
            ]
        return y


class SConvTranspose1d(StreamingModule):
    """Weight-normalised ConvTranspose1d whose output has exactly F * stride samples.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): kernel size (samples), >= stride.
        stride (int): upsampling factor.
        bias (bool): learn an additive bias.
        causal (bool): trim the surplus ``kernel_size - stride`` samples on the right
            (fraction ``trim_right_ratio``), so output sample n depends on frames
            f <= n // stride only.
        trim_right_ratio (float): share of the surplus trimmed on the right when causal
            (streaming needs 1).
        weight_norm (bool): apply weight normalisation to the weight.
        group_norm (bool): apply ``GroupNorm(1, out_channels)`` to the raw output, before
            trimming (as EnCodec's ``NormConvTranspose1d``; it cannot stream).
        causal_pad_mode (str): the frames before the first one, when causal: "constant"
            (zeros: EnCodec) or "replicate" (the first frame: AudioDec).

    Raises:
        ValueError: if ``kernel_size < stride`` or ``trim_right_ratio`` is outside [0, 1], or
            a non-causal layer asks for ``trim_right_ratio != 1`` or replicate padding,
            or replicate padding with ``trim_right_ratio != 1``.
    """

    # 2: AudioDec's causal transposed conv joined this class; its weights were ``deconv``
    _version = 2
    _RENAMED = {2: {"deconv.": "convtr."}}  # version -> {old key prefix: new}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = True,
        causal: bool = False,
        trim_right_ratio: float = 1.0,
        weight_norm: bool = True,
        group_norm: bool = False,
        causal_pad_mode: str = "constant",
    ):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} must be >= stride {stride}")
        if not 0.0 <= trim_right_ratio <= 1.0:
            raise ValueError(f"trim_right_ratio {trim_right_ratio} must lie in [0, 1]")
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio only applies to causal transposed convolutions")
        check_choice("causal_pad_mode", causal_pad_mode, ("constant", "replicate"))
        if causal_pad_mode == "replicate" and (not causal or trim_right_ratio != 1.0):
            raise ValueError("causal_pad_mode 'replicate' needs causal=True, trim_right_ratio 1")
        convtr = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.convtr = _weight_norm(convtr) if weight_norm else convtr
        self.norm: nn.Module = nn.GroupNorm(1, out_channels) if group_norm else nn.Identity()
        self.causal = causal
        self.trim_right_ratio = trim_right_ratio
        self.causal_pad_mode = causal_pad_mode
        self.kernel_size = kernel_size
        self.stride = stride
        self.context = -(-kernel_size // stride) - 1  # n_pad: earlier frames each output needs
        self._polyphase_cache: tuple | None = None
        self._packs = PackedWeights()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Rename the keys of state dicts saved before version 2 (see ``_RENAMED``)."""
        version = local_metadata.get("version") or 1
        for since, renames in self._RENAMED.items():
            if version >= since:
                continue
            for old, new in renames.items():
                for key in [k for k in state_dict if k.startswith(prefix + old)]:
                    state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def polyphase_weight(self) -> tuple[Tensor, Tensor | None]:
        """The transposed convolution as a stride-1 convolution with ``stride`` outputs per
        channel (polyphase decomposition).

        With n = ceil(k / s) taps, output sample m * s + r (phase r < s) of the transposed
        convolution is sum_{i < n} w[:, :, i * s + r]^T x[m - i]: an ordinary n-tap
        convolution (padding n - 1) with s * C_out output channels, phase-major (channel
        r * C_out + c is phase r of output channel c), tap order reversed. The rearranged
        weight is cached while the layer's weight tensor is unchanged (never for a
        weight-norm parametrised layer, whose weight is recomputed per call).

        Returns:
            tuple[Tensor, Tensor | None]: channels-last weight (s * C_out, C_in, 1, n) and
            bias (s * C_out,).
        """
        convtr, s = self.convtr, self.stride
        w = convtr.weight  # (C_in, C_out, k)
        key = None if parametrize.is_parametrized(convtr) else weight_cache_key(w)
        if key is not None and self._polyphase_cache is not None:
            if self._polyphase_cache[0] == key:
                return self._polyphase_cache[1]
        c_in, c_out, k = w.shape
        n = -(-k // s)
        w = F.pad(w, (0, n * s - k))  # zero taps up to a multiple of s
        wk = w.reshape(c_in, c_out, n, s).permute(3, 1, 0, 2).flip(-1)  # (s, C_out, C_in, n)
        wk = channels_last_weight(wk.reshape(s * c_out, c_in, n))
        bias = None if convtr.bias is None else convtr.bias.repeat(s)
        if key is not None:
            self._polyphase_cache = (key, (wk, bias))
        return wk, bias

    def _polyphase(self, x: Tensor, causal_valid: bool = False) -> Tensor:
        """``convtr(x)`` computed as in :meth:`polyphase_weight` (inference only).

        The phase-major channels of the time-major convolution output are, in memory,
        exactly the upsampled signal in time-major layout, so the interleaving of the
        phases is a view (no copy).

        Args:
            x (Tensor): (B, C_in, F), any memory layout.
            causal_valid (bool): only the output samples that see n_pad = ceil(k / s) - 1
                earlier frames: [n_pad s, F s) (a convolution without padding).

        Returns:
            Tensor: (B, C_out, (F - 1) * s + k) (or (B, C_out, (F - n_pad) * s)), time-major
            memory, equal to ``convtr(x)`` (or its samples [n_pad s, F s)) up to rounding.
        """
        wk, bias = self.polyphase_weight()
        n, s = wk.shape[-1], self.stride
        b, _, frames = x.shape
        pad = 0 if causal_valid else n - 1
        if causal_valid and torch.compiler.is_compiling():
            y = conv1d_gemm(x, wk.squeeze(2), bias)  # (B, s C_out, F')
        elif causal_valid and onednn_packs(x, self.convtr):  # a stream: shapes repeat
            packed = self._packs.get(
                self.convtr.weight,
                ("polyphase", *x.shape, x.dtype),
                lambda: torch._C._nn.mkldnn_reorder_conv2d_weight(
                    wk.to_mkldnn(),
                    [0, 0],
                    [1, 1],
                    [1, 1],
                    1,
                    [x.shape[0], x.shape[1], 1, x.shape[2]],
                ),
            )
            y = conv1d_time_major(x, None, bias, packed=packed)  # (B, s C_out, F')
        else:
            y = conv1d_time_major(x, wk, bias, padding=pad)  # (B, s C_out, F')
        out = y.shape[-1]
        y = y.transpose(1, 2).reshape(b, out * s, -1)  # a view: (B, T', C_out)
        return (
            y.transpose(1, 2)
            if causal_valid
            else y.transpose(1, 2)[..., : (frames - 1) * s + self.kernel_size]
        )

    def _pad_frames(self, x: Tensor) -> Tensor:
        """(B, C_in, F) -> (B, C_in, n_pad + F): the first frame copied n_pad times."""
        return torch.cat((x[..., :1].expand(-1, -1, self.context), x), -1)

    def forward(self, x: Tensor) -> Tensor:
        """Upsample (inside :func:`~codectk.nn.streaming.stream_step`: the next chunk).

        Args:
            x (Tensor): (B, C_in, F).

        Returns:
            Tensor: (B, C_out, F * stride).
        """
        if streaming():
            return self.stream(x)
        if self.causal_pad_mode == "replicate":  # kept: [n_pad s, (n_pad + F) s)
            x = self._pad_frames(x)
            if _plain(x) or not isinstance(self.norm, nn.Identity):
                y = self.norm(self.convtr(x))
                start = self.context * self.stride
                return y[..., start : x.shape[-1] * self.stride]
            return self._polyphase(x, causal_valid=True)
        if _plain(x):
            y = self.norm(self.convtr(x))  # (B, C_out, (F - 1) * s + k)
        else:
            y = self.norm(self._polyphase(x))
        padding_total = self.kernel_size - self.stride
        if self.causal:
            right = math.ceil(padding_total * self.trim_right_ratio)
        else:
            right = padding_total // 2
        left = padding_total - right
        return y[..., left : y.shape[-1] - right]

    # ------------------------------------------------------------------ streaming
    def check_streamable(self) -> None:
        """Raise ``ValueError`` unless causal, trimmed on the right only, without norm."""
        if not self.causal or self.trim_right_ratio != 1.0:
            raise ValueError("only a causal transposed conv with trim_right_ratio 1 can stream")
        if not isinstance(self.norm, nn.Identity):
            raise ValueError("group norm reads the whole signal: it cannot stream")

    def init_state(self, batch: int) -> State:
        """The n_pad frames before the next chunk, (B, C_in, n_pad) zeros time-major in
        memory; with replicate padding, paired with the frames seen (0)."""
        p = next(self.parameters())
        c_in = self.convtr.in_channels
        buf = torch.zeros(batch, self.context, c_in, dtype=p.dtype, device=p.device)
        buf = buf.transpose(1, 2)  # (B, n_pad, C) -> (B, C, n_pad) view, time-major
        return (buf, 0) if self.causal_pad_mode == "replicate" else buf

    def started(self, state: State) -> bool:
        """Whether the first frame has been seen (always, for zero padding)."""
        return self.causal_pad_mode != "replicate" or state[1] > 0

    def forward_chunk(self, x: Tensor, state: State, final: bool = False) -> tuple[Tensor, State]:
        """Upsample the next chunk of a stream.

        Args:
            x (Tensor): (B, C_in, F) frames.
            state: from :meth:`init_state` or the previous chunk.
            final (bool): unused (no look-ahead).

        Returns:
            tuple[Tensor, State]: (B, C_out, F * stride) and the state.

        Raises:
            ValueError: a layer that cannot stream.
        """
        self.check_streamable()
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.convtr.out_channels, 0), state
        replicate = self.causal_pad_mode == "replicate"
        buf = state[0] if replicate else state
        if replicate and not state[1]:
            full = _cat_time(x[..., :1].expand(-1, -1, self.context), x)
        else:
            full = _cat_time(buf, x)  # (B, C_in, n_pad + F)
        if _plain(x):
            start = self.context * self.stride
            y = self.convtr(full)[..., start : full.shape[-1] * self.stride]
        else:
            y = self._polyphase(full, causal_valid=True)
        held = _tail(full, self.context)
        return y, ((held, 1) if replicate else held)


def _cat_time(a: Tensor, b: Tensor) -> Tensor:
    """(B, C, T_a), (B, C, T_b) -> (B, C, T_a + T_b), time-major in memory (no reorder by
    the time-major convolutions that follow)."""
    return torch.cat((a.transpose(1, 2), b.transpose(1, 2)), 1).transpose(1, 2)


def _tail(x: Tensor, n: int) -> Tensor:
    """The last ``n`` samples of (B, C, T), (B, C, n): a view, or under ``torch.compile``
    a fresh time-major tensor (its strides are part of the compiled step's signature)."""
    if not torch.compiler.is_compiling():
        return x[..., x.shape[-1] - n :]
    tail = x.transpose(1, 2)[:, x.shape[-1] - n :]  # (B, n, C)
    return tail.clone(memory_format=torch.contiguous_format).transpose(1, 2)


def CausalConv1d(  # noqa: N802 (a layer preset, named as the layer)
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
    weight_norm: bool = False,
) -> SConv1d:
    """AudioDec's causal conv (Wu et al., ICASSP 2023, §2.1; the authors'
    ``CausalConv1d``): P = (k - 1) d zeros on the left, so T samples give ceil(T / s)
    frames and frame f sees the input up to sample f s. See :class:`SConv1d`."""
    return SConv1d(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        dilation,
        groups,
        bias,
        causal=True,
        pad_mode="constant",
        weight_norm=weight_norm,
        causal_padding="k-1",
    )


def CausalConvTranspose1d(  # noqa: N802 (a layer preset, named as the layer)
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    bias: bool = True,
    weight_norm: bool = False,
) -> SConvTranspose1d:
    """AudioDec's causal transposed conv (the authors' ``CausalConvTranspose1d``): kernel
    2 s, the first frame repeated once on the left, F frames -> F s samples; sample n
    mixes frames floor(n / s) - 1 and floor(n / s). See :class:`SConvTranspose1d`.

    Raises:
        ValueError: if ``kernel_size != 2 * stride``.
    """
    if kernel_size != 2 * stride:
        raise ValueError(f"kernel_size {kernel_size} must be 2 * stride ({2 * stride})")
    return SConvTranspose1d(
        in_channels,
        out_channels,
        kernel_size,
        stride,
        bias,
        causal=True,
        weight_norm=weight_norm,
        causal_pad_mode="replicate",
    )


def _is_weight_norm(module: nn.Module) -> bool:
    if not parametrize.is_parametrized(module, "weight"):
        return False
    return any(type(p).__name__ == "_WeightNorm" for p in module.parametrizations["weight"])


def remove_weight_norm_(module: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrisation under ``module`` into a plain weight, in place.

    The folded weight equals g * v / ||v|| at call time, so outputs are unchanged while the
    per-call reparametrisation cost disappears (use before inference or export).

    Args:
        module (nn.Module): any module tree.

    Returns:
        nn.Module: ``module`` itself.
    """
    for sub in module.modules():
        if _is_weight_norm(sub):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module
