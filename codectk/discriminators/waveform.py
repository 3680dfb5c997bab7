"""Waveform discriminators: multi-scale (MelGAN's and HiFi-GAN's MSD) and multi-period (MPD).

References:
    Kumar et al., "MelGAN: Generative Adversarial Networks for Conditional Waveform
    Synthesis", NeurIPS 2019, §2.2 and Appendix A (discriminator block).
    Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", TASLP 2021, §3.4
    ("wave-based discriminator": the MelGAN multi-resolution discriminator).
    Kong et al., "HiFi-GAN: Generative Adversarial Networks for Efficient and High
    Fidelity Speech Synthesis", NeurIPS 2020, §2.2 (MPD) and §2.3 (MSD).
    Wu et al., "AudioDec: An Open-source Streaming High-fidelity Neural Audio Codec",
    ICASSP 2023 (symAD and its vocoders train against HiFi-GAN's MSD + MPD).

Every discriminator returns ``list[list[Tensor]]``: one inner list per sub-discriminator,
holding its feature maps (after each nonlinearity) followed by its logits as the last
element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from codectk.discriminators import DISCRIMINATORS


def normed(conv: nn.Module, spectral: bool = False) -> nn.Module:
    """Wrap a convolution in weight normalisation, or spectral normalisation if ``spectral``."""
    return spectral_norm(conv) if spectral else weight_norm(conv)


def conv_stack(
    x: Tensor, layers: Iterable[nn.Module], post: nn.Module, negative_slope: float
) -> list[Tensor]:
    """Apply ``layers`` in turn, each followed by LeakyReLU(``negative_slope``), then ``post``.

    Args:
        x (Tensor): input of the first layer, e.g. (B, 1, T) or (B, C, F, N).
        layers: the convolutions.
        post (nn.Module): the logits conv.
        negative_slope (float): LeakyReLU slope.

    Returns:
        list[Tensor]: the feature map after each layer's LeakyReLU, then the logits.
    """
    outs = []
    for layer in layers:
        x = F.leaky_relu(layer(x), negative_slope)
        outs.append(x)
    outs.append(post(x))
    return outs


class _ConvStack(nn.Module):
    """``self.layers`` each followed by LeakyReLU(``self.negative_slope``), then ``self.post``.

    Subclasses build ``layers`` (an ``nn.ModuleList``), ``post`` (the logits conv) and set
    ``negative_slope``.
    """

    layers: nn.ModuleList
    post: nn.Module
    negative_slope: float

    def forward(self, wav: Tensor) -> list[Tensor]:
        """Discriminate one scale.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[Tensor]: feature maps (B, C_l, T_l), then logits (B, 1, T').
        """
        return conv_stack(wav, self.layers, self.post, self.negative_slope)


class ScaleDiscriminator(_ConvStack):
    """One MelGAN discriminator block (Kumar et al. 2019, Appendix A, Table 2).

    Layers: reflect-padded conv (``kernel_size``, ``channels``); one grouped strided conv
    per entry ``s`` of ``downsample_scales`` (kernel ``10 s + 1``, stride ``s``, channels
    multiplied by ``s`` up to ``max_channels``, ``in_channels // channels_per_group``
    groups); a conv of kernel ``last_kernel_sizes[0]`` doubling the channels; a 1-channel
    conv of kernel ``last_kernel_sizes[1]`` giving the logits. LeakyReLU after every conv
    but the last.

    Args:
        channels (int): channels of the first conv.
        max_channels (int): upper bound on the channels of any layer.
        downsample_scales (list[int]): stride of each grouped conv.
        kernel_size (int): odd kernel size of the first conv (samples).
        last_kernel_sizes (list[int]): two odd kernel sizes of the last two convs.
        channels_per_group (int): input channels per group of the grouped convs.
        negative_slope (float): LeakyReLU slope.
        spectral (bool): spectral instead of weight normalisation.

    Raises:
        ValueError: for even kernel sizes or channel counts the groups do not divide.
    """

    def __init__(
        self,
        channels: int,
        max_channels: int,
        downsample_scales: list[int],
        kernel_size: int,
        last_kernel_sizes: list[int],
        channels_per_group: int,
        negative_slope: float,
        spectral: bool = False,
    ):
        super().__init__()
        kernels = [kernel_size, *last_kernel_sizes]
        if len(last_kernel_sizes) != 2 or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernel sizes must be odd and last_kernel_sizes two; got {kernels}")
        self.negative_slope = negative_slope
        layers = [
            nn.Sequential(
                nn.ReflectionPad1d(kernel_size // 2),
                normed(nn.Conv1d(1, channels, kernel_size), spectral),
            )
        ]
        in_ch = channels
        for s in downsample_scales:
            out_ch = min(in_ch * s, max_channels)
            groups = max(1, in_ch // channels_per_group)
            if in_ch % groups or out_ch % groups:
                raise ValueError(
                    f"{groups} groups do not divide {in_ch} -> {out_ch} channels; "
                    f"change channels ({channels}) or channels_per_group ({channels_per_group})"
                )
            conv = nn.Conv1d(in_ch, out_ch, 10 * s + 1, s, padding=5 * s, groups=groups)
            layers.append(normed(conv, spectral))
            in_ch = out_ch
        out_ch = min(in_ch * 2, max_channels)
        k0, k1 = last_kernel_sizes
        layers.append(normed(nn.Conv1d(in_ch, out_ch, k0, padding=k0 // 2), spectral))
        self.layers = nn.ModuleList(layers)
        self.post = normed(nn.Conv1d(out_ch, 1, k1, padding=k1 // 2), spectral)


class _PooledScales(nn.Module):
    """Run ``self.discriminators[k]`` on the waveform average-pooled k times.

    Each further scale pools the previous input with ``AvgPool1d(4, 2, padding=2)``
    (HiFi-GAN §2.3; MelGAN §2.2), so scale k sees about fs / 2^k.

    Args:
        scales (int): number of sub-discriminators (>= 1).
        make_block (Callable[[bool], nn.Module]): builds one sub-discriminator; its
            argument asks for spectral (True) instead of weight normalisation.
        spectral_norm_first_scale (bool): spectral norm in the raw-audio block only.

    Raises:
        ValueError: ``scales < 1``.
    """

    def __init__(
        self,
        scales: int,
        make_block: Callable[[bool], nn.Module],
        spectral_norm_first_scale: bool,
    ):
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.discriminators = nn.ModuleList(
            make_block(spectral_norm_first_scale and i == 0) for i in range(scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform at every scale.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[list[Tensor]]: per scale k, feature maps (B, C_l, T_{k,l}) then logits
            (B, 1, T_k'), with T_k about T / 2^k.
        """
        outs = []
        for i, disc in enumerate(self.discriminators):
            if i > 0:
                wav = self.pool(wav)  # (B, 1, T / 2^i)
            outs.append(disc(wav))
        return outs


@DISCRIMINATORS.register("msd")
class MultiScaleDiscriminator(_PooledScales):
    """MelGAN multi-scale discriminator (Kumar et al. 2019, §2.2; SoundStream §3.4).

    ``scales`` identical :class:`ScaleDiscriminator` blocks see the waveform at rates
    ``fs, fs/2, fs/4, ...``: each further scale average-pools the previous input with
    ``AvgPool1d(4, 2, padding=2)`` (HiFi-GAN §2.3). Defaults are MelGAN's: 3 scales, 16
    channels growing x4 per grouped conv up to 1024, strides [4, 4, 4, 4], first kernel 15,
    last kernels [5, 3], 4 channels per group, LeakyReLU(0.2), weight norm.
    ``spectral_norm_first_scale`` uses spectral normalisation on the raw-audio scale as
    HiFi-GAN's MSD does.

    Args:
        scales (int): number of sub-discriminators (>= 1).
        channels (int): channels of each block's first conv.
        max_channels (int): channel cap.
        downsample_scales (list[int] | None): strides of the grouped convs
            (default [4, 4, 4, 4]).
        kernel_size (int): first conv kernel size (odd, samples).
        last_kernel_sizes (list[int] | None): the two last kernel sizes (default [5, 3]).
        channels_per_group (int): input channels per group in the grouped convs.
        negative_slope (float): LeakyReLU slope.
        spectral_norm_first_scale (bool): spectral norm in the first block.

    Raises:
        ValueError: ``scales < 1`` or an inconsistent block configuration.
    """

    def __init__(
        self,
        scales: int = 3,
        channels: int = 16,
        max_channels: int = 1024,
        downsample_scales: list[int] | None = None,
        kernel_size: int = 15,
        last_kernel_sizes: list[int] | None = None,
        channels_per_group: int = 4,
        negative_slope: float = 0.2,
        spectral_norm_first_scale: bool = False,
    ):
        downsample_scales = [4, 4, 4, 4] if downsample_scales is None else downsample_scales
        last_kernel_sizes = [5, 3] if last_kernel_sizes is None else last_kernel_sizes

        def make_block(spectral: bool) -> ScaleDiscriminator:
            return ScaleDiscriminator(
                channels,
                max_channels,
                downsample_scales,
                kernel_size,
                last_kernel_sizes,
                channels_per_group,
                negative_slope,
                spectral,
            )

        super().__init__(scales, make_block, spectral_norm_first_scale)


class HiFiGANScaleDiscriminator(_ConvStack):
    """One HiFi-GAN scale sub-discriminator (Kong et al. 2020, §2.3; official DiscriminatorS).

    Layers, each zero-padded to keep "same" length before striding: a conv of kernel
    ``kernel_sizes[0]`` to ``channels``; one grouped conv of kernel ``kernel_sizes[1]``
    per entry ``s`` of ``downsample_scales`` (stride ``s``; the first keeps ``channels``
    with 4 groups, each next one doubles the channels up to ``max_channels`` and has 4x
    the groups up to ``max_groups``); a conv of kernel ``kernel_sizes[2]`` doubling the
    channels (capped); a 1-channel conv of kernel ``kernel_sizes[3]`` giving the logits.
    LeakyReLU after every conv but the last. HiFi-GAN V1 is ``channels=128,
    downsample_scales=[2, 2, 4, 4, 1]``, i.e. 128 -> 128 (g4) -> 256 -> 512 -> 1024 ->
    1024 (g16) -> 1024 -> 1, kernels 15 / 41 / 5 / 3; AudioDec uses strides
    [4, 4, 4, 4, 1].

    Args:
        channels (int): channels of the first conv.
        max_channels (int): upper bound on the channels of any layer.
        max_groups (int): upper bound on the groups of the grouped convs.
        downsample_scales (list[int]): stride of each grouped conv.
        kernel_sizes (list[int]): four odd kernel sizes (first, grouped, last two).
        negative_slope (float): LeakyReLU slope.
        spectral (bool): spectral instead of weight normalisation.
        normalize (bool): False leaves the convs plain unless ``spectral`` (AudioDec).

    Raises:
        ValueError: not four odd kernel sizes, or groups that do not divide the channels.
    """

    def __init__(
        self,
        channels: int,
        max_channels: int,
        max_groups: int,
        downsample_scales: list[int],
        kernel_sizes: list[int],
        negative_slope: float,
        spectral: bool = False,
        normalize: bool = True,
    ):
        super().__init__()
        if len(kernel_sizes) != 4 or any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be four odd ints, got {kernel_sizes}")
        k_first, k_down, k_last, k_post = kernel_sizes
        self.negative_slope = negative_slope

        def norm(conv: nn.Conv1d) -> nn.Module:
            return normed(conv, spectral) if spectral or normalize else conv

        layers = [norm(nn.Conv1d(1, channels, k_first, padding=k_first // 2))]
        in_ch, out_ch, groups = channels, channels, 4
        for s in downsample_scales:
            if in_ch % groups or out_ch % groups:
                raise ValueError(
                    f"{groups} groups do not divide {in_ch} -> {out_ch} channels; "
                    f"make channels ({channels}) a multiple of {max_groups}"
                )
            conv = nn.Conv1d(in_ch, out_ch, k_down, s, padding=k_down // 2, groups=groups)
            layers.append(norm(conv))
            in_ch, out_ch = out_ch, min(out_ch * 2, max_channels)
            groups = min(groups * 4, max_groups)
        out_ch = min(in_ch * 2, max_channels)
        layers.append(norm(nn.Conv1d(in_ch, out_ch, k_last, padding=k_last // 2)))
        self.layers = nn.ModuleList(layers)
        self.post = norm(nn.Conv1d(out_ch, 1, k_post, padding=k_post // 2))


@DISCRIMINATORS.register("hifigan_msd")
class HiFiGANMultiScaleDiscriminator(_PooledScales):
    """HiFi-GAN multi-scale discriminator (Kong et al. 2020, §2.3), as AudioDec trains with.

    ``scales`` :class:`HiFiGANScaleDiscriminator` blocks on the raw, x2 and x4
    average-pooled waveform (``AvgPool1d(4, 2, padding=2)``). The raw-audio block uses
    spectral normalisation and the others weight normalisation, as the official HiFi-GAN
    (Parallel WaveGAN's ``follow_official_norm``). Defaults are HiFi-GAN V1's; AudioDec's
    configs set ``downsample_scales: [4, 4, 4, 4, 1]``, and its copy of the block has no
    normalisation at all (``spectral_norm_first_scale: false, weight_norm: false``): its
    norm hooks apply to ``nn.Conv2d`` only, and the block's layers are ``Conv1d``
    (AudioDec ``models/vocoder/modules/discriminator.py:355-373``).

    Args:
        scales (int): number of sub-discriminators (>= 1).
        channels (int): channels of each block's first conv.
        max_channels (int): channel cap.
        max_groups (int): cap on the groups of the grouped convs.
        downsample_scales (list[int] | None): strides of the grouped convs
            (default [2, 2, 4, 4, 1]).
        kernel_sizes (list[int] | None): first, grouped, and last two kernel sizes
            (default [15, 41, 5, 3]).
        negative_slope (float): LeakyReLU slope.
        spectral_norm_first_scale (bool): spectral norm in the first block.
        weight_norm (bool): weight norm in the blocks without spectral norm (False: plain).

    Raises:
        ValueError: ``scales < 1`` or an inconsistent block configuration.
    """

    def __init__(
        self,
        scales: int = 3,
        channels: int = 128,
        max_channels: int = 1024,
        max_groups: int = 16,
        downsample_scales: list[int] | None = None,
        kernel_sizes: list[int] | None = None,
        negative_slope: float = 0.1,
        spectral_norm_first_scale: bool = True,
        weight_norm: bool = True,
    ):
        downsample_scales = [2, 2, 4, 4, 1] if downsample_scales is None else downsample_scales
        kernel_sizes = [15, 41, 5, 3] if kernel_sizes is None else kernel_sizes

        def make_block(spectral: bool) -> HiFiGANScaleDiscriminator:
            return HiFiGANScaleDiscriminator(
                channels,
                max_channels,
                max_groups,
                downsample_scales,
                kernel_sizes,
                negative_slope,
                spectral,
                weight_norm,
            )

        super().__init__(scales, make_block, spectral_norm_first_scale)


class PeriodDiscriminator(nn.Module):
    """One HiFi-GAN period sub-discriminator (Kong et al. 2020, §2.2, Fig. 2(b)).

    The waveform (reflect-padded on the right to a multiple of ``period``) is folded to a
    2-D map (B, 1, T / p, p), then 2-D convs with kernel (k, 1) and strides (s, 1) process
    each phase column independently. HiFi-GAN pads p - T mod p samples only when T is not
    a multiple of p; with ``always_pad`` (DAC's ``MPD.pad_to_period``) it pads
    p - T mod p always, i.e. a whole extra period when T mod p = 0.

    Args:
        period (int): folding period p in samples.
        channels (list[int]): output channels of each (k, 1) conv.
        strides (list[int]): time stride of each conv (same length as ``channels``).
        kernel_size (int): odd kernel size k along time.
        negative_slope (float): LeakyReLU slope.
        spectral (bool): spectral instead of weight normalisation.
        always_pad (bool): pad even when T is a multiple of p (DAC).
        post_kernel_size (int): kernel (k, 1) of the logits conv, zero-padded by k // 2
            (HiFi-GAN 3; AudioDec 2, one frame longer).
    """

    def __init__(
        self,
        period: int,
        channels: list[int],
        strides: list[int],
        kernel_size: int,
        negative_slope: float,
        spectral: bool = False,
        always_pad: bool = False,
        post_kernel_size: int = 3,
    ):
        super().__init__()
        self.period, self.negative_slope = period, negative_slope
        self.always_pad = always_pad
        pad = (kernel_size // 2, 0)
        in_chs = [1, *channels[:-1]]
        self.layers = nn.ModuleList(
            normed(nn.Conv2d(i, o, (kernel_size, 1), (s, 1), padding=pad), spectral)
            for i, o, s in zip(in_chs, channels, strides)
        )
        k = post_kernel_size
        self.post = normed(nn.Conv2d(channels[-1], 1, (k, 1), padding=(k // 2, 0)), spectral)

    def forward(self, wav: Tensor) -> list[Tensor]:
        """Discriminate one period.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[Tensor]: feature maps (B, C_l, T_l, p), then logits (B, 1, T', p).
        """
        b, c, t = wav.shape
        if t % self.period or self.always_pad:
            n_pad = self.period - t % self.period  # in 1..p
            mode = "reflect" if n_pad < t else "replicate"
            wav = F.pad(wav, (0, n_pad), mode=mode)  # (B, 1, T + n_pad)
            t += n_pad
        x = wav.view(b, c, t // self.period, self.period)  # (B, 1, T / p, p)
        return conv_stack(x, self.layers, self.post, self.negative_slope)


@DISCRIMINATORS.register("mpd")
class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN multi-period discriminator (Kong et al. 2020, §2.2).

    Defaults are HiFi-GAN V1's: periods [2, 3, 5, 7, 11], channels [32, 128, 512, 1024,
    1024] with strides [3, 3, 3, 3, 1], kernel 5, LeakyReLU(0.1), weight norm.

    Args:
        periods (list[int] | None): one sub-discriminator per period (samples).
        channels (list[int] | None): channels of the (k, 1) convs.
        strides (list[int] | None): their time strides (same length as ``channels``).
        kernel_size (int): odd kernel size along time.
        negative_slope (float): LeakyReLU slope.
        use_spectral_norm (bool): spectral instead of weight normalisation.
        always_pad (bool): pad p - T mod p samples even when T is a multiple of p, a whole
            extra period (DAC's MPD; HiFi-GAN pads only when needed).
        post_kernel_size (int): kernel (k, 1) of each logits conv, padding k // 2 (AudioDec
            uses 2: its ``output_conv`` kernel is ``kernel_sizes[1] - 1`` with padding
            ``(kernel_sizes[1] - 1) // 2``, ``models/vocoder/modules/discriminator.py:92-98``).

    Raises:
        ValueError: empty or non-positive periods, mismatched channels/strides lengths,
            an even kernel size or a post kernel size below 1.
    """

    def __init__(
        self,
        periods: list[int] | None = None,
        channels: list[int] | None = None,
        strides: list[int] | None = None,
        kernel_size: int = 5,
        negative_slope: float = 0.1,
        use_spectral_norm: bool = False,
        always_pad: bool = False,
        post_kernel_size: int = 3,
    ):
        super().__init__()
        periods = [2, 3, 5, 7, 11] if periods is None else periods
        channels = [32, 128, 512, 1024, 1024] if channels is None else channels
        strides = [3, 3, 3, 3, 1] if strides is None else strides
        if not periods or min(periods) < 1:
            raise ValueError(f"periods must be a non-empty list of positive ints, got {periods}")
        if not channels or len(channels) != len(strides):
            raise ValueError(f"channels {channels} and strides {strides} must match in length")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if post_kernel_size < 1:
            raise ValueError(f"post_kernel_size must be >= 1, got {post_kernel_size}")
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(
                p,
                channels,
                strides,
                kernel_size,
                negative_slope,
                use_spectral_norm,
                always_pad,
                post_kernel_size=post_kernel_size,
            )
            for p in periods
        )

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform at every period.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[list[Tensor]]: per period p, feature maps (B, C_l, T_l, p) then logits
            (B, 1, T', p).
        """
        return [disc(wav) for disc in self.discriminators]
