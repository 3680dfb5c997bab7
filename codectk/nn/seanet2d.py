"""2-D SEANet encoder and decoder over (frequency, time) maps, as FunCodec's FreqCodec.

Du, Zhang, Hu, Zheng, "FunCodec: A Fundamental, Reproducible and Integrable Open-source
Toolkit for Neural Speech Codec", ICASSP 2024 (arXiv 2309.07405) (frequency-domain
models); released as ``SEANetEncoder2d`` / ``SEANetDecoder2d`` in FunCodec:

* Encoder: Conv2d(k x k, C) on the (B, C_in, N, T) spectrogram features (N bins, T STFT
  frames) -> for each (s_f, s_t) in ``reversed(ratios)``: [residual units, act,
  Conv2d(kernel (2 s_f, 2 s_t), stride (s_f, s_t)) doubling the channels] -> the bin axis
  must be down to 1 and is squeezed -> [LSTM] -> act -> Conv1d(k, D): (B, D, T / prod s_t).
* Decoder mirrors it: Conv1d(k, 2^len(ratios) C) -> [LSTM] -> unsqueeze a bin axis -> for
  each (s_f, s_t) in ``ratios``: [act, ConvTranspose2d(kernel (2 s_f, 2 s_t), stride
  (s_f, s_t)) halving the channels, residual units] -> act -> Conv2d(k x k, C_out). The
  last transposed conv keeps ``n_freq - prod(s_f)`` extra bins (FunCodec's
  ``last_out_padding``; 257 = 256 + 1 for a 512-point FFT).
* Residual unit: shortcut(x) + [act, Conv2d(3 x 3, dilation (1, d), N -> N / compress),
  act, Conv2d(1 x 1, N / compress -> N)](x), shortcut a 1 x 1 conv unless ``true_skip``.
* ``norm``: "time_group_norm" (GroupNorm with one group after every conv, FunCodec's
  FreqCodec recipes), "weight_norm" or "none". ``conv_group_ratio`` r > 0 gives the
  residual convs ``min(C_in, C_out) / 2 / r`` groups and the strided convs ``C_in / 2 / r``
  (at least 1; FunCodec's grouped "grN" models); ``tr_conv_group_ratio`` gives the
  transposed convs ``C_in / 2 / r`` groups.

Padding: along frequency every conv pads ``(k_f - 1) d_f - (s_f - 1)`` bins split evenly
(the extra one on the left) with ``pad_mode``, mapping N bins to floor(N / s_f); along time
as :class:`~codectk.nn.conv.SConv1d` (non-causal), mapping T frames to ceil(T / s_t).
Transposed convs trim ``k - s`` (half on each side, the extra one on the left), mapping
(N, T) to (N s_f, T s_t).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from codectk.errors import check_choice
from codectk.nn.conv import extra_padding_for_conv1d, pad1d
from codectk.nn.lstm import SLSTM
from codectk.nn.seanet import make_activation
from codectk.registry import with_overrides

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "time_group_norm": lambda c: nn.GroupNorm(1, c),
    "weight_norm": lambda c: nn.Identity(),
    "none": lambda c: nn.Identity(),
}


def _normed(conv: nn.Module, norm: str, channels: int) -> nn.Module:
    """``conv`` with weight norm, or followed by the norm module ``norm`` names."""
    check_choice("norm", norm, NORMS)
    if norm == "weight_norm":
        return weight_norm(conv)
    return nn.Sequential(conv, NORMS[norm](channels))


def _groups(channels: int, ratio: int) -> int:
    """FunCodec's grouping: ``channels / 2 / ratio`` groups (at least 1); dense if ratio <= 0."""
    return max(1, channels // 2 // ratio) if ratio > 0 else 1


def _pad_last(x: Tensor, paddings: tuple[int, int], mode: str) -> Tensor:
    """:func:`~codectk.nn.conv.pad1d` along the last axis of a tensor of any rank."""
    shape = x.shape
    y = pad1d(x.reshape(-1, 1, shape[-1]), paddings, mode)  # (..., L) -> (N, 1, L)
    return y.reshape(*shape[:-1], y.shape[-1])  # (N, 1, L') -> (..., L')


class SConv2d(nn.Module):
    """Conv2d over (B, C, N, T) with FunCodec's padding (see module doc).

    Args:
        in_channels (int), out_channels (int): channels.
        kernel_size (Sequence[int]): (k_f, k_t).
        stride (Sequence[int]): (s_f, s_t).
        dilation (Sequence[int]): (d_f, d_t).
        groups (int): convolution groups.
        norm (str): "time_group_norm", "weight_norm" or "none".
        pad_mode (str): "reflect", "constant" or "replicate".
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] = (1, 1),
        dilation: Sequence[int] = (1, 1),
        groups: int = 1,
        norm: str = "time_group_norm",
        pad_mode: str = "reflect",
    ):
        super().__init__()
        conv = nn.Conv2d(
            in_channels, out_channels, tuple(kernel_size), tuple(stride), 0, tuple(dilation), groups
        )
        self.conv = _normed(conv, norm, out_channels)
        self.eff = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
        self.stride = list(stride)
        self.pad_mode = pad_mode

    def forward(self, x: Tensor) -> Tensor:
        """Convolve: (B, C_in, N, T) -> (B, C_out, floor(N / s_f), ceil(T / s_t))."""
        (kf, kt), (sf, st) = self.eff, self.stride
        total_f, total_t = kf - sf, kt - st
        extra = extra_padding_for_conv1d(x.shape[-1], kt, st, total_t)
        right_t, after_f = total_t // 2, total_f // 2
        x = _pad_last(x, (total_t - right_t, right_t + extra), self.pad_mode)  # time axis
        x = _pad_last(x.transpose(2, 3), (total_f - after_f, after_f), self.pad_mode)  # (B,C,T,N)
        return self.conv(x.transpose(2, 3))  # (B, C, T', N') -> (B, C, N', T')


class SConvTranspose2d(nn.Module):
    """ConvTranspose2d over (B, C, N, T) mapping (N, T) to (N s_f + extra_bins, T s_t).

    Args:
        in_channels (int), out_channels (int): channels.
        kernel_size (Sequence[int]): (k_f, k_t), each >= its stride.
        stride (Sequence[int]): (s_f, s_t).
        groups (int): convolution groups.
        norm (str): "time_group_norm", "weight_norm" or "none".
        extra_bins (int): bins kept beyond N s_f at the high end (at most (k_f - s_f) / 2).

    Raises:
        ValueError: for a kernel smaller than its stride or too many ``extra_bins``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int],
        groups: int = 1,
        norm: str = "time_group_norm",
        extra_bins: int = 0,
    ):
        super().__init__()
        (kf, kt), (sf, st) = kernel_size, stride
        if kf < sf or kt < st:
            raise ValueError(f"kernel_size {kernel_size} must be >= stride {stride}")
        if not 0 <= extra_bins <= (kf - sf) // 2:
            raise ValueError(f"extra_bins {extra_bins} must lie in [0, {(kf - sf) // 2}]")
        conv = nn.ConvTranspose2d(in_channels, out_channels, (kf, kt), (sf, st), groups=groups)
        self.convtr = _normed(conv, norm, out_channels)
        after_f, after_t = (kf - sf) // 2, (kt - st) // 2
        self.trim_f = (kf - sf - after_f, after_f - extra_bins)
        self.trim_t = (kt - st - after_t, after_t)

    def forward(self, x: Tensor) -> Tensor:
        """Upsample: (B, C_in, N, T) -> (B, C_out, N s_f + extra_bins, T s_t)."""
        y = self.convtr(x)  # (B, C_out, (N - 1) s_f + k_f, (T - 1) s_t + k_t)
        (f0, f1), (t0, t1) = self.trim_f, self.trim_t
        return y[..., f0 : y.shape[-2] - f1, t0 : y.shape[-1] - t1]


class ResnetBlock2d(nn.Module):
    """SEANet residual unit over (B, N_ch, N, T) maps (see module doc).

    Args:
        dim (int): channels.
        kernel_size (int): k of the k x k conv.
        dilation (int): time dilation of that conv.
        activation (str): activation name.
        norm (str): conv normalisation.
        pad_mode (str): padding mode.
        compress (int): hidden channels ``dim // compress``.
        true_skip (bool): identity shortcut instead of a 1 x 1 conv.
        group_ratio (int): grouped-conv ratio (<= 0: dense convs).
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        dilation: int,
        activation: str,
        norm: str,
        pad_mode: str,
        compress: int,
        true_skip: bool,
        group_ratio: int,
    ):
        super().__init__()
        hidden = dim // compress
        conv = dict(norm=norm, pad_mode=pad_mode)
        k = (kernel_size, kernel_size)
        self.block = nn.Sequential(
            make_activation(activation),
            SConv2d(
                dim,
                hidden,
                k,
                dilation=(1, dilation),
                groups=_groups(hidden, group_ratio),
                **conv,
            ),
            make_activation(activation),
            SConv2d(hidden, dim, (1, 1), groups=_groups(hidden, group_ratio), **conv),
        )
        self.shortcut: nn.Module = (
            nn.Identity()
            if true_skip
            else SConv2d(dim, dim, (1, 1), groups=_groups(dim, group_ratio), **conv)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit: (B, C, N, T) -> (B, C, N, T)."""
        return self.shortcut(x) + self.block(x)


@dataclass
class SEANet2dConfig:
    """The settings the 2-D SEANet's encoder and decoder share, passed whole to both.

    Args:
        n_freq (int): bins N of the features (the encoder's strides must reduce it to
            exactly 1; the decoder's last transposed conv adds back ``n_freq - prod s_f``).
        dimension (int): latent dimension D.
        n_filters (int): base channels C (the decoder's first stage has 2^len(ratios) C).
        ratios (Sequence[Sequence[int]]): (s_f, s_t) strides in DECODER order.
        n_residual_layers (int): residual units per stage (time dilations base^j).
        dilation_base (int): time-dilation growth.
        kernel_size (int): k of the encoder's first k x k conv and of the decoder's first
            Conv1d.
        residual_kernel_size (int): k of the residual units' k x k conv.
        last_kernel_size (int): kernel of the encoder's final Conv1d to D and of the
            decoder's final k x k conv.
        activation (str): activation name.
        norm (str): conv normalisation ("time_group_norm", "weight_norm" or "none").
        pad_mode (str): padding mode.
        lstm (int): LSTM layers at the bottleneck (0: none).
        compress (int): residual hidden-channel reduction.
        true_skip (bool): identity shortcuts.
        conv_group_ratio (int): grouped-conv ratio of residual and strided convs (<= 0:
            dense).
        tr_conv_group_ratio (int): grouped-conv ratio of the decoder's transposed convs.

    Raises:
        ValueError: bad ratios, an unknown norm or activation.
    """

    n_freq: int
    dimension: int
    n_filters: int
    ratios: Sequence[Sequence[int]]
    n_residual_layers: int = 1
    dilation_base: int = 1
    kernel_size: int = 7
    residual_kernel_size: int = 3
    last_kernel_size: int = 7
    activation: str = "elu"
    norm: str = "time_group_norm"
    pad_mode: str = "reflect"
    lstm: int = 2
    compress: int = 2
    true_skip: bool = False
    conv_group_ratio: int = -1
    tr_conv_group_ratio: int = -1

    def __post_init__(self):
        r = self.ratios
        if not r or any(len(p) != 2 or min(p) < 1 for p in r):
            raise ValueError(f"ratios must be a non-empty list of [s_f, s_t] pairs, got {r}")
        self.ratios = [(int(p[0]), int(p[1])) for p in r]
        check_choice("norm", self.norm, NORMS)
        make_activation(self.activation)

    def residual_unit(self, channels: int, j: int) -> ResnetBlock2d:
        """The ``j``-th residual unit of a stage with ``channels`` channels."""
        return ResnetBlock2d(
            channels,
            self.residual_kernel_size,
            self.dilation_base**j,
            self.activation,
            self.norm,
            self.pad_mode,
            self.compress,
            self.true_skip,
            self.conv_group_ratio,
        )


class SEANet2dEncoder(nn.Module):
    """(B, C_in, N, T) spectrogram features -> latent (B, D, ceil(T / prod s_t)).

    Args:
        in_channels (int): feature channels C_in (3 for mag/phase, 2 for mag/angle).
        config (SEANet2dConfig | None): the network's settings (None: from ``overrides``).
        **overrides: :class:`SEANet2dConfig` fields replacing those of ``config``.

    Raises:
        ValueError: from :class:`SEANet2dConfig`, or strides that do not reduce N to 1.
    """

    def __init__(self, in_channels: int, config: SEANet2dConfig | None = None, **overrides: Any):
        super().__init__()
        c = self.config = with_overrides(SEANet2dConfig, config, overrides)
        conv = dict(norm=c.norm, pad_mode=c.pad_mode)
        ch, bins = c.n_filters, c.n_freq
        k = (c.kernel_size, c.kernel_size)
        layers: list[nn.Module] = [SConv2d(in_channels, ch, k, **conv)]
        for sf, st in reversed(c.ratios):
            layers += [c.residual_unit(ch, j) for j in range(c.n_residual_layers)]
            groups = _groups(ch, c.conv_group_ratio)
            down = SConv2d(ch, 2 * ch, (2 * sf, 2 * st), (sf, st), groups=groups, **conv)
            layers += [make_activation(c.activation), down]
            ch, bins = 2 * ch, bins // sf
        if bins != 1:
            raise ValueError(f"ratios {c.ratios} reduce {c.n_freq} bins to {bins}, not 1")
        self.conv2d = nn.Sequential(*layers)
        tail: list[nn.Module] = [SLSTM(ch, num_layers=c.lstm)] if c.lstm else []
        tail += [
            make_activation(c.activation),
            _Conv1d(ch, c.dimension, c.last_kernel_size, c.norm, c.pad_mode),
        ]
        self.conv1d = nn.Sequential(*tail)

    def forward(self, x: Tensor) -> Tensor:
        """Encode: (B, C_in, N, T) -> (B, D, ceil(T / prod s_t))."""
        return self.conv1d(self.conv2d(x).squeeze(2))  # (B, C, 1, T') -> (B, C, T')


class SEANet2dDecoder(nn.Module):
    """Latent (B, D, F) -> (B, C_out, n_freq, F * prod s_t) spectrogram features.

    Args:
        out_channels (int): feature channels C_out.
        config (SEANet2dConfig | None): the network's settings (None: from ``overrides``).
        **overrides: :class:`SEANet2dConfig` fields replacing those of ``config``.

    Raises:
        ValueError: from :class:`SEANet2dConfig`, or an ``n_freq`` the last transposed
            conv cannot produce.
    """

    def __init__(self, out_channels: int, config: SEANet2dConfig | None = None, **overrides: Any):
        super().__init__()
        c = self.config = with_overrides(SEANet2dConfig, config, overrides)
        conv = dict(norm=c.norm, pad_mode=c.pad_mode)
        pairs = c.ratios
        ch = c.n_filters * 2 ** len(pairs)
        head: list[nn.Module] = [_Conv1d(c.dimension, ch, c.kernel_size, c.norm, c.pad_mode)]
        head += [SLSTM(ch, num_layers=c.lstm)] if c.lstm else []
        self.conv1d = nn.Sequential(*head)
        extra = c.n_freq - math.prod(sf for sf, _ in pairs)
        layers: list[nn.Module] = []
        for i, (sf, st) in enumerate(pairs):
            up = SConvTranspose2d(
                ch,
                ch // 2,
                (2 * sf, 2 * st),
                (sf, st),
                groups=_groups(ch, c.tr_conv_group_ratio),
                norm=c.norm,
                extra_bins=extra if i == len(pairs) - 1 else 0,
            )
            layers += [make_activation(c.activation), up]
            ch //= 2
            layers += [c.residual_unit(ch, j) for j in range(c.n_residual_layers)]
        k = (c.last_kernel_size, c.last_kernel_size)
        layers += [make_activation(c.activation), SConv2d(ch, out_channels, k, **conv)]
        self.conv2d = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Decode: (B, D, F) -> (B, C_out, n_freq, F * prod s_t)."""
        return self.conv2d(self.conv1d(z).unsqueeze(2))  # (B, C, F) -> (B, C, 1, F)


class _Conv1d(nn.Module):
    """Non-causal 'same' Conv1d with the 2-D modules' normalisation (reflect padding)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, norm: str, pad_mode: str):
        super().__init__()
        self.conv = _normed(nn.Conv1d(c_in, c_out, kernel_size), norm, c_out)
        self.pad = kernel_size - 1
        self.pad_mode = pad_mode

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, T)."""
        right = self.pad // 2
        return self.conv(pad1d(x, (self.pad - right, right), self.pad_mode))
