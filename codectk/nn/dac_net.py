"""DAC's convolutional encoder and decoder (snake activations, weight-normalised convs).

Kumar, Seetharaman, Luebs, Kumar, Kumar, "High-Fidelity Audio Compression with Improved
RVQGAN" (DAC), NeurIPS 2023, §3.1 and Appendix (architecture); layout as in the authors'
``dac.model.dac`` (``Encoder``, ``Decoder``, ``EncoderBlock``, ``DecoderBlock``,
``ResidualUnit``):

* Residual unit (dim N, dilation d): y = x + Conv_1x1(snake(Conv_{k=7,d}(snake(x)))),
  channels kept at N.
* Encoder: Conv(k=7, C) -> for each stride S (encoder ``rates``): [residual units with
  dilations 1, 3, 9 at the current width N, snake, Conv(k=2S, stride S, N -> 2N)] ->
  snake -> Conv(k=3, D). With C = 64 and four strides the last width is 16C = 1024.
* Decoder: Conv(k=7, D -> C_dec) -> for each stride S (decoder ``rates``, i = 0..):
  [snake, ConvTranspose(k=2S, stride S, C_dec / 2^i -> C_dec / 2^(i+1)), residual units
  with dilations 1, 3, 9] -> snake -> Conv(k=7, channels) -> tanh.

Every convolution is non-causal and zero-padded: :class:`~codectk.nn.conv.SConv1d` with
``pad_mode="constant"`` pads a stride-S conv of kernel 2S by ceil(S/2) on the left and
S//2 on the right, and :class:`~codectk.nn.conv.SConvTranspose1d` trims ceil(S/2) left and
S//2 right, which gives exactly the authors' outputs (their ``padding=ceil(S/2)`` with
``output_padding=S % 2``) for inputs that are a multiple of the hop, while mapping T to
T / S and F to F * S exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from codectk.nn.conv import SConv1d, SConvTranspose1d
from codectk.nn.snake import Snake1d

_DILATIONS = (1, 3, 9)


def _conv(c_in: int, c_out: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> SConv1d:
    return SConv1d(c_in, c_out, kernel_size, stride, dilation, pad_mode="constant")


def _check_rates(rates: Sequence[int], name: str) -> list[int]:
    rates = list(rates)
    if not rates or any(int(r) != r or r < 1 for r in rates):
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {rates}")
    return [int(r) for r in rates]


class DACResidualUnit(nn.Module):
    """x + Conv_1x1(snake(Conv_{7,d}(snake(x)))) (DAC ``ResidualUnit``).

    Args:
        dim (int): channels N.
        dilation (int): dilation d of the k = 7 convolution.
    """

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(dim), _conv(dim, dim, 7, dilation=dilation), Snake1d(dim), _conv(dim, dim, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit.

        Args:
            x (Tensor): (B, N, T).

        Returns:
            Tensor: (B, N, T).
        """
        return x + self.block(x)


class DACEncoderBlock(nn.Module):
    """Residual units at N = dim / 2 channels, snake, then a stride-S conv to ``dim``.

    Args:
        dim (int): output channels (2N).
        stride (int): downsampling factor S.
    """

    def __init__(self, dim: int, stride: int):
        super().__init__()
        half = dim // 2
        self.block = nn.Sequential(
            *(DACResidualUnit(half, d) for d in _DILATIONS),
            Snake1d(half),
            _conv(half, dim, 2 * stride, stride),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Downsample (B, dim / 2, T) to (B, dim, T / S)."""
        return self.block(x)


class DACDecoderBlock(nn.Module):
    """Snake, stride-S transposed conv, then residual units (DAC ``DecoderBlock``).

    Args:
        input_dim (int): input channels.
        output_dim (int): output channels.
        stride (int): upsampling factor S.
    """

    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(input_dim),
            SConvTranspose1d(input_dim, output_dim, 2 * stride, stride),
            *(DACResidualUnit(output_dim, d) for d in _DILATIONS),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Upsample (B, input_dim, F) to (B, output_dim, F * S)."""
        return self.block(x)


class DACEncoder(nn.Module):
    """DAC encoder: waveform (B, channels, T) -> latent (B, latent_dim, T / hop_length).

    The arguments are the keys of DAC's ``codec_conf.encoder`` section (``channels`` is
    the codec's).

    Args:
        dim (int): width C of the first conv, doubled by each block (DAC: 64).
        rates (Sequence[int]): strides, in encoder order (DAC 44.1 kHz: 2, 4, 8, 8); their
            product is the hop in samples.
        latent_dim (int | None): D, channels of the latent (None: C * 2^len(rates), as
            DAC: 1024).
        channels (int): audio channels.

    Raises:
        ValueError: for empty or non-positive ``rates``, or ``channels`` < 1.
    """

    def __init__(
        self,
        dim: int = 64,
        rates: Sequence[int] = (2, 4, 8, 8),
        latent_dim: int | None = None,
        channels: int = 1,
    ):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.rates = _check_rates(rates, "encoder rates")
        self.hop_length = math.prod(self.rates)
        if latent_dim is None:
            latent_dim = dim * 2 ** len(self.rates)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [_conv(channels, dim, 7)]
        width = dim
        for stride in self.rates:
            width *= 2
            layers.append(DACEncoderBlock(width, stride))
        layers += [Snake1d(width), _conv(width, latent_dim, 3)]
        self.block = nn.Sequential(*layers)

    def forward(self, wav: Tensor) -> Tensor:
        """Encode.

        Args:
            wav (Tensor): (B, channels, T), T a multiple of ``hop_length``.

        Returns:
            Tensor: latent (B, D, T / hop_length).
        """
        return self.block(wav)


class DACDecoder(nn.Module):
    """DAC decoder: latent (B, D, F) -> waveform (B, channels, F * hop_length) in (-1, 1).

    ``dim`` and ``rates`` are the keys of DAC's ``codec_conf.decoder`` section
    (``latent_dim`` is the encoder's, ``channels`` the codec's).

    Args:
        latent_dim (int): D.
        dim (int): width of the first conv, halved by each block (DAC: 1536).
        rates (Sequence[int]): upsampling strides in order (DAC 44.1 kHz: 8, 8, 4, 2).
        channels (int): audio channels.

    Raises:
        ValueError: for bad rates, ``channels`` < 1, or a ``dim`` that does not halve
            len(rates) times.
    """

    def __init__(
        self,
        latent_dim: int = 1024,
        dim: int = 1536,
        rates: Sequence[int] = (8, 8, 4, 2),
        channels: int = 1,
    ):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.rates = _check_rates(rates, "decoder rates")
        self.hop_length = math.prod(self.rates)
        if dim % 2 ** len(self.rates):
            raise ValueError(
                f"decoder dim {dim} must be divisible by 2^{len(self.rates)} "
                f"(one halving per rate in {self.rates})"
            )
        layers: list[nn.Module] = [_conv(latent_dim, dim, 7)]
        for i, stride in enumerate(self.rates):
            layers.append(DACDecoderBlock(dim // 2**i, dim // 2 ** (i + 1), stride))
        out_dim = dim // 2 ** len(self.rates)
        layers += [Snake1d(out_dim), _conv(out_dim, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Decode.

        Args:
            z (Tensor): latent (B, D, F).

        Returns:
            Tensor: waveform (B, channels, F * hop_length).
        """
        return self.model(z)
