"""HiFi-GAN generator with multi-receptive-field fusion, and the HiFi-Codec encoder.

Kong, Kim, Bae, "HiFi-GAN: Generative Adversarial Networks for Efficient and High
Fidelity Speech Synthesis", NeurIPS 2020, §2.1 and Fig. 1: the generator upsamples by
transposed convolutions; after each one a multi-receptive-field fusion (MRF) module sums
|k_r| residual blocks with kernels k_r and dilations D_r (ResBlock1: three pairs
[LReLU, conv(k, d), LReLU, conv(k, 1)] with skips; ResBlock2: two [LReLU, conv(k, d)])
and divides by |k_r|. V1 settings: k_r = [3, 7, 11], D_r = [[1, 3, 5]] * 3, 512 initial
channels halved at every upsampling, LReLU(0.1), weight norm everywhere.

Yang et al., "HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio
Codec", arXiv 2305.02765, 2023, as released in AcademiCodec's ``hificodec/models.py``:
the decoder is that generator fed with the quantised latent (``Generator``); the encoder
mirrors it (``Encoder``): conv(7, C) then, for the upsampling rates and kernels reversed,
[LReLU(0.1), strided conv(k, u) doubling the channels, MRF whose residual-block outputs
are group-normalised (GroupNorm of ch / 16 groups after each partial sum), with the
kernels reversed], then LReLU(0.01) and a plain (not weight-normalised) conv(3) to D.

Lengths: a strided conv (kernel k, stride u, padding (k - u) / 2) maps T = m u samples to
exactly m frames and the transposed conv maps m frames back to m u samples, provided
k - u is even and k >= u (checked). All residual convs are "same" convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from codectk.errors import check_choice
from codectk.nn.conv import CausalConv1d

LRELU_SLOPE = 0.1  # HiFi-GAN's slope inside the network


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd-kernel stride-1 convolution: (k d - d) / 2 samples."""
    return (kernel_size * dilation - dilation) // 2


def _wn_conv(c_in: int, c_out: int, k: int, d: int = 1, groups: int = 1) -> nn.Module:
    return weight_norm(
        nn.Conv1d(c_in, c_out, k, 1, dilation=d, padding=get_padding(k, d), groups=groups)
    )


class ResBlock1(nn.Module):
    """HiFi-GAN ResBlock1: for each dilation d, x += conv_k,1(LReLU(conv_k,d(LReLU(x)))).

    Args:
        channels (int): channels C.
        kernel_size (int): odd kernel k.
        dilations (Sequence[int]): one dilation per pair (V1: 1, 3, 5).
        groups (int): convolution groups (AudioDec's multi-group block).
        slope (float): LeakyReLU slope.
        causal (bool): AudioDec's causal convolutions (:func:`~codectk.nn.conv.CausalConv1d`,
            (k - 1) d zeros on the left, streamable) instead of "same" padding.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        groups: int = 1,
        slope: float = LRELU_SLOPE,
        causal: bool = False,
    ):
        super().__init__()

        def conv(d: int) -> nn.Module:
            if causal:
                return CausalConv1d(channels, channels, kernel_size, 1, d, groups, weight_norm=True)
            return _wn_conv(channels, channels, kernel_size, d, groups)

        self.convs1 = nn.ModuleList(conv(d) for d in dilations)
        self.convs2 = nn.ModuleList(conv(1) for _ in dilations)
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block: (B, C, T) -> (B, C, T)."""
        for c1, c2 in zip(self.convs1, self.convs2):
            y = c1(F.leaky_relu(x, self.slope))
            x = x + c2(F.leaky_relu(y, self.slope))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN ResBlock2: for each dilation d, x += conv_k,d(LReLU(x)).

    Args:
        channels (int): channels C.
        kernel_size (int): odd kernel k.
        dilations (Sequence[int]): dilations (V3: 1, 3).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(_wn_conv(channels, channels, kernel_size, d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block: (B, C, T) -> (B, C, T)."""
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


RESBLOCKS: dict[str, type[nn.Module]] = {"1": ResBlock1, "2": ResBlock2}


def check_hifigan_args(
    rates: Sequence[int],
    kernels: Sequence[int],
    resblock: str,
    resblock_kernel_sizes: Sequence[int],
    resblock_dilation_sizes: Sequence[Sequence[int]],
) -> None:
    """Validate HiFi-GAN layout arguments.

    Raises:
        ValueError: naming the bad value: mismatched lists, a stride kernel k with k < u
            or odd k - u, an even residual kernel, or an unknown ``resblock``.
    """
    check_choice("resblock", resblock, RESBLOCKS)
    if not rates or len(rates) != len(kernels):
        raise ValueError(f"upsample_rates {rates} and upsample_kernel_sizes {kernels} must match")
    for u, k in zip(rates, kernels):
        if u < 1 or k < u or (k - u) % 2:
            raise ValueError(f"upsample kernel {k} for rate {u} must be >= {u} with k - u even")
    if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
        raise ValueError(
            f"resblock_kernel_sizes {resblock_kernel_sizes} and resblock_dilation_sizes "
            f"{resblock_dilation_sizes} must match in length"
        )
    if any(k % 2 == 0 for k in resblock_kernel_sizes):
        raise ValueError(f"resblock_kernel_sizes {resblock_kernel_sizes} must be odd")


class _MRFStack(nn.Module):
    """What the HiFi-GAN generator and the HiFi-Codec encoder share: the checked layout,
    ``hop_length``, and the multi-receptive-field fusion after each strided stage.

    Subclasses append ``num_kernels`` residual blocks per stage to ``self.resblocks``, in
    stage order.

    Args:
        rates (Sequence[int]): upsampling factors u_i (their product is the hop).
        kernels (Sequence[int]): the strided (transposed) convs' kernels k_i.
        resblock (str): "1" (ResBlock1) or "2" (ResBlock2).
        resblock_kernel_sizes (Sequence[int]): MRF kernels k_r.
        resblock_dilation_sizes (Sequence[Sequence[int]]): MRF dilations D_r.

    Raises:
        ValueError: see :func:`check_hifigan_args`.
    """

    def __init__(
        self,
        rates: Sequence[int],
        kernels: Sequence[int],
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
    ):
        super().__init__()
        check_hifigan_args(rates, kernels, resblock, resblock_kernel_sizes, resblock_dilation_sizes)
        self.hop_length = math.prod(rates)
        self.num_kernels = len(resblock_kernel_sizes)

    def mrf(self, stage: int, x: Tensor, norms: nn.ModuleList | None = None) -> Tensor:
        """Multi-receptive-field fusion of stage ``stage``: the mean of its residual
        blocks' outputs, each partial sum passed through ``norms[j]`` when given (the
        HiFi-Codec encoder's GroupNorms).

        Args:
            stage (int): stage index i (blocks ``i * num_kernels`` to
                ``(i + 1) * num_kernels - 1``).
            x (Tensor): (B, C_i, T_i).
            norms (nn.ModuleList | None): one module per residual block (None: none).

        Returns:
            Tensor: (B, C_i, T_i).
        """
        acc = None
        for j in range(stage * self.num_kernels, (stage + 1) * self.num_kernels):
            y = self.resblocks[j](x)
            acc = y if acc is None else acc + y
            if norms is not None:
                acc = norms[j](acc)  # normalise the partial sum
        return acc / self.num_kernels


class HiFiGANGenerator(_MRFStack):
    """HiFi-GAN generator: latent (B, D, F) -> waveform (B, 1, F * prod(upsample_rates)).

    Args:
        dimension (int): input channels D.
        upsample_initial_channel (int): channels after the input conv (halved per stage).
        upsample_rates (Sequence[int]): upsampling factors u_i (their product is the hop).
        upsample_kernel_sizes (Sequence[int]): transposed-conv kernels k_i.
        resblock (str): "1" (ResBlock1) or "2" (ResBlock2).
        resblock_kernel_sizes (Sequence[int]): MRF kernels k_r.
        resblock_dilation_sizes (Sequence[Sequence[int]]): MRF dilations D_r.
        output_negative_slope (float): slope of the LeakyReLU before the output conv
            (HiFi-GAN's official code: 0.01, PyTorch's default; AcademiCodec's HiFi-Codec
            decoder: 0.1, ``academicodec/models/hificodec/models.py:176``).

    Raises:
        ValueError: see :func:`check_hifigan_args`.
    """

    def __init__(
        self,
        dimension: int,
        upsample_initial_channel: int,
        upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int],
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        output_negative_slope: float = 0.01,
    ):
        super().__init__(
            upsample_rates,
            upsample_kernel_sizes,
            resblock,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
        )
        self.output_negative_slope = output_negative_slope
        block = RESBLOCKS[resblock]
        ch = upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(dimension, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            up = nn.ConvTranspose1d(ch, ch // 2, k, u, padding=(k - u) // 2)
            self.ups.append(weight_norm(up))
            ch //= 2
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, rk, rd))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, z: Tensor) -> Tensor:
        """Decode.

        Args:
            z (Tensor): latent (B, D, F).

        Returns:
            Tensor: waveform (B, 1, F * hop_length) in (-1, 1) (tanh output).
        """
        x = self.conv_pre(z)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C_i, F_i) -> (B, C_i / 2, F_i * u_i)
            x = self.mrf(i, x)
        x = self.conv_post(F.leaky_relu(x, self.output_negative_slope))
        return torch.tanh(x)


class HiFiCodecEncoder(_MRFStack):
    """HiFi-Codec encoder (the generator mirrored): waveform (B, 1, T) -> latent (B, D, F).

    Args:
        n_filters (int): channels C of the input conv (doubled at every downsampling).
        dimension (int): output channels D.
        upsample_rates (Sequence[int]): the decoder's rates; applied reversed as strides.
        upsample_kernel_sizes (Sequence[int]): the decoder's kernels; applied reversed.
        resblock (str): "1" or "2".
        resblock_kernel_sizes (Sequence[int]): MRF kernels (applied reversed).
        resblock_dilation_sizes (Sequence[Sequence[int]]): MRF dilations (reversed).
        group_norm_size (int): channels per GroupNorm group (AcademiCodec: 16); at least
            one group.

    Raises:
        ValueError: see :func:`check_hifigan_args`.
    """

    def __init__(
        self,
        n_filters: int,
        dimension: int,
        upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int],
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        group_norm_size: int = 16,
    ):
        super().__init__(
            upsample_rates,
            upsample_kernel_sizes,
            resblock,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
        )
        block = RESBLOCKS[resblock]
        kernels = list(reversed(resblock_kernel_sizes))
        dilations = list(reversed(resblock_dilation_sizes))
        ch = n_filters
        self.conv_pre = weight_norm(nn.Conv1d(1, ch, 7, 1, padding=3))
        self.downs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.norms = nn.ModuleList()
        for u, k in reversed(list(zip(upsample_rates, upsample_kernel_sizes))):
            self.downs.append(weight_norm(nn.Conv1d(ch, 2 * ch, k, u, padding=(k - u) // 2)))
            ch *= 2
            for rk, rd in zip(kernels, dilations):
                self.resblocks.append(block(ch, rk, rd))
                self.norms.append(nn.GroupNorm(max(1, ch // group_norm_size), ch, eps=1e-6))
        self.conv_post = nn.Conv1d(ch, dimension, 3, 1, padding=1)
        nn.init.normal_(self.conv_post.weight, 0.0, 0.01)  # AcademiCodec's init_weights

    def forward(self, wav: Tensor) -> Tensor:
        """Encode.

        Args:
            wav (Tensor): (B, 1, T), T a multiple of ``hop_length``.

        Returns:
            Tensor: latent (B, D, T / hop_length).
        """
        x = self.conv_pre(wav)
        for i, down in enumerate(self.downs):
            x = down(F.leaky_relu(x, LRELU_SLOPE))  # (B, C_i, T_i) -> (B, 2 C_i, T_i / u_i)
            x = self.mrf(i, x, self.norms)
        return self.conv_post(F.leaky_relu(x))  # default slope 0.01, as AcademiCodec
