"""AudioDec's causal networks: the symmetric encoder/decoder, the projector and the
causal HiFi-GAN vocoder. They are built from AudioDec's causal layers
(:func:`~codectk.nn.conv.CausalConv1d`, :func:`~codectk.nn.conv.CausalConvTranspose1d`),
so they stream through :mod:`codectk.nn.streaming` with no code of their own.

Wu, Gebru, Marković, Richard, "AudioDec: An Open-source Streaming High-fidelity Neural
Audio Codec", ICASSP 2023, §2.1 and Fig. 1, as released in facebookresearch/AudioDec
(``models/autoencoder/modules/{encoder,decoder,projector,residual_unit}.py``,
``models/vocoder/HiFiGAN.py``, ``models/vocoder/modules/{multi_fusion,residual_block}.py``):

* residual unit: x + conv1x1(ELU(conv_k7,d(ELU(x)))), both convs without bias;
* encoder: conv_k7 (C, no bias), then per stride s_i: 3 residual units (dilations 1, 3,
  9) and a strided conv (kernel 2 s_i, C r_i channels, bias); no activation at the end;
* projector: conv_k3 to the code dimension D (no bias);
* decoder: conv_k7 (D -> C r_0, no bias), then per stride: transposed conv (kernel 2 s)
  and 3 residual units, then conv_k7 to the output channels (no bias, no tanh);
* vocoder (HiFi-GAN generator, Kong et al. NeurIPS 2020, §2.1, made causal): conv_k7,
  then per upsampling: LeakyReLU(0.1), causal transposed conv halving the channels, and
  a multi-receptive-field fusion (MRF, the mean of residual blocks of kernels k_r) or,
  with a single kernel and ``groups`` > 1, AudioDec's multi-group block (the input
  repeated ``groups`` times, a grouped residual block, a 1x1 conv back to C); then
  LeakyReLU(0.01), conv_k7 and tanh. Weight normalisation on every convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from codectk.nn.conv import CausalConv1d, CausalConvTranspose1d, Conv1x1
from codectk.nn.hifigan import ResBlock1


def _check_stages(channel_ratios: Sequence[int], strides: Sequence[int], side: str) -> None:
    """Check that the encoder's or decoder's (``side``: "encoder" or "decoder") channel
    ratios and strides describe the same stages.

    Raises:
        ValueError: ``channel_ratios`` and ``strides`` differ in length (the message names
            the codec's ``codec_conf.<side>`` section).
    """
    if len(channel_ratios) != len(strides):
        raise ValueError(
            f"codec_conf.{side}: channel_ratios {list(channel_ratios)} and strides "
            f"{list(strides)} differ in length"
        )


class ResidualUnit(nn.Module):
    """x + conv1x1(ELU(causal conv_k,d(ELU(x)))), no biases (AudioDec ``CausalResidualUnit``).

    Args:
        channels (int): C.
        dilation (int): dilation of the k-tap conv.
        kernel_size (int): k.
    """

    def __init__(self, channels: int, dilation: int, kernel_size: int = 7):
        super().__init__()
        self.conv1 = CausalConv1d(channels, channels, kernel_size, dilation=dilation, bias=False)
        self.conv2 = Conv1x1(channels, channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class EncoderBlock(nn.Module):
    """3 residual units (dilations 1, 3, 9) then a strided conv (kernel 2 s, bias)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations: Sequence[int] = (1, 3, 9)):
        super().__init__()
        self.res_units = nn.ModuleList(ResidualUnit(c_in, d) for d in dilations)
        self.conv = CausalConv1d(c_in, c_out, 2 * stride, stride)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, ceil(T / s))."""
        for unit in self.res_units:
            x = unit(x)
        return self.conv(x)


class DecoderBlock(nn.Module):
    """Causal transposed conv (kernel 2 s, bias) then 3 residual units (1, 3, 9)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations: Sequence[int] = (1, 3, 9)):
        super().__init__()
        self.conv = CausalConvTranspose1d(c_in, c_out, 2 * stride, stride)
        self.res_units = nn.ModuleList(ResidualUnit(c_out, d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, F) -> (B, C_out, F s)."""
        x = self.conv(x)
        for unit in self.res_units:
            x = unit(x)
        return x


class AudioDecEncoder(nn.Module):
    """AudioDec encoder: waveform -> encoder features (the projector follows it).

    Args:
        in_channels (int): input audio channels (AudioDec's MIMO ``input_channels``).
        channels (int): C, channels of the first conv (AudioDec's ``encode_channels``, 32).
        channel_ratios (Sequence[int]): C r_i after block i (``enc_ratios``, 2, 4, 8, 16).
        strides (Sequence[int]): s_i in samples (``enc_strides``, 3, 4, 5, 5; hop = their
            product).
        kernel_size (int): first conv kernel (7).

    Shapes: (B, in_channels, T) -> (B, C r_last, ceil(T / hop)).

    Raises:
        ValueError: ``channel_ratios`` and ``strides`` differ in length.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 32,
        channel_ratios: Sequence[int] = (2, 4, 8, 16),
        strides: Sequence[int] = (3, 4, 5, 5),
        kernel_size: int = 7,
    ):
        super().__init__()
        _check_stages(channel_ratios, strides, "encoder")
        self.conv = CausalConv1d(in_channels, channels, kernel_size, bias=False)
        blocks, c_in = [], channels
        for r, s in zip(channel_ratios, strides):
            blocks.append(EncoderBlock(c_in, channels * r, s))
            c_in = channels * r
        self.conv_blocks = nn.ModuleList(blocks)
        self.out_channels = c_in

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, ceil(T / hop))."""
        x = self.conv(x)
        for block in self.conv_blocks:
            x = block(x)
        return x


class Projector(nn.Module):
    """AudioDec's projector: a causal conv (kernel 3, no bias) to the code dimension D.

    Shapes: (B, C, F) -> (B, D, F).
    """

    def __init__(self, in_channels: int = 512, code_dim: int = 64, kernel_size: int = 3):
        super().__init__()
        self.project = CausalConv1d(in_channels, code_dim, kernel_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, F) -> (B, D, F)."""
        return self.project(x)


class AudioDecDecoder(nn.Module):
    """AudioDec's symmetric decoder: quantised latent -> waveform.

    Args:
        code_dim (int): D (64).
        out_channels (int): output audio channels (MIMO ``output_channels``).
        channels (int): C (``decode_channels``, 32).
        channel_ratios (Sequence[int]): ``dec_ratios`` (16, 8, 4, 2): block i maps
            C r_i -> C r_{i+1} channels (the last block -> C).
        strides (Sequence[int]): ``dec_strides`` (5, 5, 4, 3).
        kernel_size (int): first/last conv kernel (7).

    Shapes: (B, D, F) -> (B, out_channels, F * hop).

    Raises:
        ValueError: ``channel_ratios`` and ``strides`` differ in length.
    """

    def __init__(
        self,
        code_dim: int = 64,
        out_channels: int = 1,
        channels: int = 32,
        channel_ratios: Sequence[int] = (16, 8, 4, 2),
        strides: Sequence[int] = (5, 5, 4, 3),
        kernel_size: int = 7,
    ):
        super().__init__()
        _check_stages(channel_ratios, strides, "decoder")
        self.conv1 = CausalConv1d(code_dim, channels * channel_ratios[0], kernel_size, bias=False)
        outs = [channels * r for r in channel_ratios[1:]] + [channels]
        self.conv_blocks = nn.ModuleList(
            DecoderBlock(channels * r, c_out, s)
            for r, c_out, s in zip(channel_ratios, outs, strides)
        )
        self.conv2 = CausalConv1d(channels, out_channels, kernel_size, bias=False)

    def forward(self, z: Tensor) -> Tensor:
        """(B, D, F) -> (B, out_channels, F * hop)."""
        x = self.conv1(z)
        for block in self.conv_blocks:
            x = block(x)
        return self.conv2(x)


class MultiReceptiveField(nn.Module):
    """HiFi-GAN MRF: the mean of residual blocks with kernels k_r (AD v0)."""

    def __init__(
        self,
        channels: int,
        kernels: Sequence[int],
        dilations: Sequence[Sequence[int]],
        slope: float,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResBlock1(channels, k, d, 1, slope, causal=True) for k, d in zip(kernels, dilations)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        return torch.stack([b(x) for b in self.blocks]).mean(0)


class MultiGroupBlock(nn.Module):
    """AudioDec's multi-group block (AD v1/v2): repeat x ``groups`` times along channels,
    a grouped residual block, then a 1x1 conv (no bias) back to C channels."""

    def __init__(
        self, channels: int, kernel: int, dilations: Sequence[int], groups: int, slope: float
    ):
        super().__init__()
        self.groups = groups
        self.block = ResBlock1(channels * groups, kernel, dilations, groups, slope, causal=True)
        self.conv_out = _weight_norm(Conv1x1(channels * groups, channels, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        return self.conv_out(self.block(x.repeat(1, self.groups, 1)))  # (B, G C, T) -> (B, C, T)


class CausalHiFiGANGenerator(nn.Module):
    """AudioDec's causal HiFi-GAN vocoder (see module doc).

    Args:
        in_channels (int): input feature channels (the code dimension D).
        out_channels (int): output audio channels.
        channels (int): channels after the first conv (halved at every upsampling).
        kernel_size (int): first and last conv kernel.
        upsample_scales (Sequence[int]): upsampling factors (product = hop).
        resblock_kernel_sizes (Sequence[int]): k_r of the residual blocks.
        resblock_dilations (Sequence[Sequence[int]] | None): dilations of each block
            (None: AudioDec's (1, 3, 5) for every kernel).
        groups (int): > 1 with a single kernel selects the multi-group block.
        slope (float): LeakyReLU slope inside the network (0.1).

    Shapes: (B, in_channels, F) -> (B, out_channels, F * prod(upsample_scales)).

    Raises:
        ValueError: mismatched kernel/dilation lists or an even kernel.
    """

    def __init__(
        self,
        in_channels: int = 64,
        out_channels: int = 1,
        channels: int = 512,
        kernel_size: int = 7,
        upsample_scales: Sequence[int] = (5, 5, 4, 3),
        resblock_kernel_sizes: Sequence[int] = (11,),
        resblock_dilations: Sequence[Sequence[int]] | None = None,
        groups: int = 3,
        slope: float = 0.1,
    ):
        super().__init__()
        if resblock_dilations is None:
            resblock_dilations = [(1, 3, 5)] * len(resblock_kernel_sizes)
        if len(resblock_kernel_sizes) != len(resblock_dilations):
            raise ValueError(
                f"resblock_kernel_sizes {list(resblock_kernel_sizes)} and resblock_dilations "
                f"{list(resblock_dilations)} differ in length"
            )
        if kernel_size % 2 == 0 or any(k % 2 == 0 for k in resblock_kernel_sizes):
            raise ValueError("kernel sizes of the vocoder must be odd")
        self.slope = slope
        self.input_conv = CausalConv1d(in_channels, channels, kernel_size, weight_norm=True)
        ups, blocks = [], []
        multi_group = len(resblock_kernel_sizes) == 1 and groups > 1
        for i, s in enumerate(upsample_scales):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            ups.append(CausalConvTranspose1d(c_in, c_out, 2 * s, s, weight_norm=True))
            if multi_group:
                blocks.append(
                    MultiGroupBlock(
                        c_out, resblock_kernel_sizes[0], resblock_dilations[0], groups, slope
                    )
                )
            else:
                blocks.append(
                    MultiReceptiveField(c_out, resblock_kernel_sizes, resblock_dilations, slope)
                )
        self.upsamples = nn.ModuleList(ups)
        self.blocks = nn.ModuleList(blocks)
        self.output_conv = CausalConv1d(
            channels // 2 ** len(upsample_scales), out_channels, kernel_size, weight_norm=True
        )

    def forward(self, c: Tensor) -> Tensor:
        """(B, D, F) -> waveform (B, out_channels, F * hop) in (-1, 1)."""
        x = self.input_conv(c)
        for up, block in zip(self.upsamples, self.blocks):
            x = block(up(F.leaky_relu(x, self.slope)))
        return torch.tanh(self.output_conv(F.leaky_relu(x, 0.01)))
