"""1-D convolutions with weight normalisation and "same-rate" padding.

The padding follows EnCodec's ``SConv1d`` / ``SConvTranspose1d`` (Défossez et al., "High
Fidelity Neural Audio Compression", 2022, §3.1) so that a stride-``s`` convolution maps
T samples to exactly F = ceil(T / s) frames, and a stride-``s`` transposed convolution maps
F frames to exactly F * s samples.

Padding math for :class:`SConv1d`, with effective kernel k = (kernel_size - 1) * dilation + 1
and stride s (k >= s required):

* ``padding_total = k - s`` is the fixed padding; ``extra = ceil(T / s) * s - T`` (in
  [0, s)) is appended on the right so that the last window is complete.
* The output length is then (T + padding_total + extra - k) / s + 1 = ceil(T / s).
* Causal: all of ``padding_total`` goes on the left, ``extra`` on the right, both zeros; the
  output frame f then depends on input samples t <= f * s + s - 1 only. (Reflect padding
  would copy samples 1..padding_total into the past, i.e. read the future, so causal
  convolutions zero-pad unless ``causal_pad_mode`` says otherwise: the authors' EnCodec
  reflect-pads on the left, and its released weights are reproduced only that way.)
* Non-causal: ``padding_total // 2`` on the right (plus ``extra``), the rest on the left,
  with ``pad_mode`` ("reflect" as in EnCodec, or "constant" for zeros).

For :class:`SConvTranspose1d` the raw output has (F - 1) * s + k samples; the
``padding_total = k - s`` surplus is trimmed: all on the right when causal
(``trim_right_ratio`` = 1), half on each side (the extra one on the left) otherwise.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

_PAD_MODES = ("reflect", "constant", "replicate")


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
    if mode not in _PAD_MODES:
        raise ValueError(f"pad mode {mode!r} not supported; choose one of {list(_PAD_MODES)}")
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    length = x.shape[-1]
    max_pad = max(left, right)
    extra = max(0, max_pad - length + 1)  # reflect needs T > pad; zero-extend first
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra]


class SConv1d(nn.Module):
    """Weight-normalised Conv1d whose output has ceil(T / stride) frames (see module doc).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): kernel size (samples).
        stride (int): stride; must not exceed the effective kernel size.
        dilation (int): dilation.
        groups (int): convolution groups.
        bias (bool): learn an additive bias.
        causal (bool): pad only on the left (zeros), so output frame f sees inputs up to
            f * stride + stride - 1.
        pad_mode (str): padding of the non-causal convolution ("reflect", "constant",
            "replicate").
        weight_norm (bool): reparametrise the weight as g * v / ||v|| (Salimans & Kingma,
            2016) with ``torch.nn.utils.parametrizations.weight_norm``.
        group_norm (bool): apply ``GroupNorm(1, out_channels)`` to the output (EnCodec's
            "time_group_norm", used by its non-causal 48 kHz model).
        causal_pad_mode (str): left padding of the causal convolution: "constant" (zeros,
            strictly causal) or "reflect" / "replicate" (the authors' EnCodec pads with
            ``pad_mode``, so the first frames see up to ``padding_total`` future samples).

    Raises:
        ValueError: if stride exceeds the effective kernel size, or for an unknown pad mode.
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
    ):
        super().__init__()
        effective = (kernel_size - 1) * dilation + 1
        if stride > effective:
            raise ValueError(f"stride {stride} exceeds the effective kernel size {effective}")
        for mode in (pad_mode, causal_pad_mode):
            if mode not in _PAD_MODES:
                raise ValueError(
                    f"pad mode {mode!r} not supported; choose one of {list(_PAD_MODES)}"
                )
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
        self.stride = stride
        self.effective_kernel_size = effective

    def forward(self, x: Tensor) -> Tensor:
        """Convolve.

        Args:
            x (Tensor): (B, C_in, T).

        Returns:
            Tensor: (B, C_out, ceil(T / stride)).
        """
        k, s = self.effective_kernel_size, self.stride
        padding_total = k - s
        extra = extra_padding_for_conv1d(x.shape[-1], k, s, padding_total)
        if self.causal:
            x = pad1d(x, (padding_total, extra), mode=self.causal_pad_mode)
        else:
            right = padding_total // 2
            x = pad1d(x, (padding_total - right, right + extra), mode=self.pad_mode)
        return self.norm(self.conv(x))


class SConvTranspose1d(nn.Module):
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
        trim_right_ratio (float): share of the surplus trimmed on the right when causal.
        weight_norm (bool): apply weight normalisation to the weight.
        group_norm (bool): apply ``GroupNorm(1, out_channels)`` to the raw output, before
            trimming (as EnCodec's ``NormConvTranspose1d``).

    Raises:
        ValueError: if ``kernel_size < stride`` or ``trim_right_ratio`` is outside [0, 1], or
            a non-causal layer asks for ``trim_right_ratio != 1``.
    """

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
    ):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} must be >= stride {stride}")
        if not 0.0 <= trim_right_ratio <= 1.0:
            raise ValueError(f"trim_right_ratio {trim_right_ratio} must lie in [0, 1]")
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio only applies to causal transposed convolutions")
        convtr = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.convtr = _weight_norm(convtr) if weight_norm else convtr
        self.norm: nn.Module = nn.GroupNorm(1, out_channels) if group_norm else nn.Identity()
        self.causal = causal
        self.trim_right_ratio = trim_right_ratio
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Upsample.

        Args:
            x (Tensor): (B, C_in, F).

        Returns:
            Tensor: (B, C_out, F * stride).
        """
        y = self.norm(self.convtr(x))  # (B, C_out, (F - 1) * s + k)
        padding_total = self.kernel_size - self.stride
        if self.causal:
            right = math.ceil(padding_total * self.trim_right_ratio)
        else:
            right = padding_total // 2
        left = padding_total - right
        return y[..., left : y.shape[-1] - right]


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
