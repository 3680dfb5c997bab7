"""Complex-STFT discriminators: SoundStream's STFT discriminator and EnCodec's MS-STFT.

Both take the complex STFT of the waveform (Hann window, ``torch.stft``) and feed its real
and imaginary parts as two input channels of a 2-D conv stack laid out as
(B, 2, frames, bins): axis 2 is time, axis 3 frequency.

References:
    Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", TASLP 2021, §3.4
    and Fig. 4 (STFT-based discriminator).
    Défossez et al., "High Fidelity Neural Audio Compression" (EnCodec), TMLR 2023, §3.4
    (multi-scale STFT discriminator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.discriminators import DISCRIMINATORS
from codectk.discriminators.waveform import conv_stack, normed


def complex_stft(
    wav: Tensor,
    window: Tensor,
    n_fft: int,
    hop_length: int,
    center: bool,
    normalized: bool = False,
) -> Tensor:
    """Real and imaginary STFT parts as two channels.

    Args:
        wav (Tensor): waveform, shape (B, 1, T).
        window (Tensor): analysis window, shape (win_length,), win_length <= n_fft.
        n_fft (int): FFT size (samples); ``n_fft // 2 + 1`` bins.
        hop_length (int): frame shift (samples).
        center (bool): reflect-pad by ``n_fft // 2`` on both sides first.
        normalized (bool): divide the complex STFT by the window's L2 norm (as
            ``torchaudio.transforms.Spectrogram(normalized=True)``, bit for bit).

    Returns:
        Tensor: shape (B, 2, frames, n_fft // 2 + 1).

    Raises:
        ValueError: ``wav`` is not (B, 1, T) or is too short for one frame.
    """
    if wav.dim() != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected a waveform of shape (B, 1, T), got {tuple(wav.shape)}")
    min_len = n_fft // 2 + 1 if center else n_fft
    if wav.shape[-1] < min_len:
        raise ValueError(f"waveform of {wav.shape[-1]} samples is shorter than {min_len} (n_fft)")
    spec = torch.stft(
        wav.squeeze(1),  # (B, T)
        n_fft,
        hop_length,
        window.shape[0],
        window,
        center=center,
        pad_mode="reflect",
        return_complex=True,
    )  # (B, bins, frames)
    if normalized:
        spec = spec / window.pow(2).sum().sqrt()
    x = torch.stack([spec.real, spec.imag], dim=1)  # (B, 2, bins, frames)
    return x.transpose(2, 3)  # (B, 2, frames, bins)


class ResidualUnit2d(nn.Module):
    """SoundStream's 2-D residual unit (Fig. 4): 3x3 conv, then a strided conv.

    Main path: conv 3x3 (``in_channels``) -> LeakyReLU -> conv of kernel
    (s_t + 2, s_f + 2), stride (s_t, s_f), padding 1 (``out_channels``), which maps a
    length L to floor(L / s). Shortcut: conv of kernel = stride = (s_t, s_f), the same
    length map. The sum goes through LeakyReLU.

    Args:
        in_channels (int), out_channels (int): channels.
        stride (list[int]): (s_t, s_f), strides over frames and bins.
        negative_slope (float): LeakyReLU slope.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: list[int], negative_slope: float
    ):
        super().__init__()
        st, sf = stride
        self.negative_slope = negative_slope
        self.conv1 = normed(nn.Conv2d(in_channels, in_channels, 3, padding=1))
        self.conv2 = normed(
            nn.Conv2d(in_channels, out_channels, (st + 2, sf + 2), (st, sf), padding=1)
        )
        self.shortcut = normed(nn.Conv2d(in_channels, out_channels, (st, sf), (st, sf)))

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit.

        Args:
            x (Tensor): shape (B, C_in, F, N), F frames and N bins.

        Returns:
            Tensor: shape (B, C_out, F // s_t, N // s_f).
        """
        y = self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope))
        return F.leaky_relu(y + self.shortcut(x), self.negative_slope)


@DISCRIMINATORS.register("stft")
class STFTDiscriminator(nn.Module):
    """SoundStream's single-scale STFT discriminator (Zeghidour et al. 2021, §3.4, Fig. 4).

    Complex STFT (window W = ``n_fft`` = 1024, hop H = 256) -> conv 7x7 (C = ``channels``
    = 32) -> 6 residual units with strides alternating (1, 2) and (2, 2) and output
    channels ``C * prod(multipliers[:i+1])`` with multipliers [2, 2, 1, 2, 1, 2] (so
    2C, 4C, 4C, 8C, 8C, 16C, as in Fig. 4) -> a conv of kernel (1, bins / 2^6) that
    aggregates the remaining frequency bins into a 1-D logit sequence of T / (H * 2^3)
    frames. The paper does not name the nonlinearity or the weight normalisation; we use
    LeakyReLU(0.2) and weight norm as the other discriminators here. ``normalized``
    divides the STFT by the window's L2 norm (as EnCodec), keeping inputs O(1).

    Args:
        n_fft (int): FFT and window size W in samples.
        hop_length (int): hop H in samples.
        channels (int): C, channels of the first conv.
        strides (list[list[int]] | None): (s_t, s_f) per residual unit.
        multipliers (list[int] | None): channel multiplier m per residual unit.
        negative_slope (float): LeakyReLU slope.
        normalized (bool): divide the STFT by ``sqrt(sum(window**2))``.

    Raises:
        ValueError: mismatched ``strides``/``multipliers`` or too few bins for the strides.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        channels: int = 32,
        strides: list[list[int]] | None = None,
        multipliers: list[int] | None = None,
        negative_slope: float = 0.2,
        normalized: bool = True,
    ):
        super().__init__()
        strides = [[1, 2], [2, 2]] * 3 if strides is None else strides
        multipliers = [2, 2, 1, 2, 1, 2] if multipliers is None else multipliers
        if len(strides) != len(multipliers) or any(len(s) != 2 for s in strides):
            raise ValueError(
                f"strides {strides} must be (s_t, s_f) pairs, one per multiplier {multipliers}"
            )
        self.n_fft, self.hop_length, self.negative_slope = n_fft, hop_length, negative_slope
        window = torch.hann_window(n_fft)
        if normalized:
            window = window / window.pow(2).sum().sqrt()
        self.register_buffer("window", window, persistent=False)
        self.conv_in = normed(nn.Conv2d(2, channels, 7, padding=3))
        units, bins, in_ch = [], n_fft // 2 + 1, channels
        for stride, mult in zip(strides, multipliers):
            units.append(ResidualUnit2d(in_ch, in_ch * mult, stride, negative_slope))
            in_ch, bins = in_ch * mult, bins // stride[1]
        if bins < 1:
            raise ValueError(f"n_fft={n_fft} gives too few bins for frequency strides {strides}")
        self.units = nn.ModuleList(units)
        self.post = normed(nn.Conv2d(in_ch, 1, (1, bins)))

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform.

        Args:
            wav (Tensor): waveform, shape (B, 1, T), T > n_fft / 2.

        Returns:
            list[list[Tensor]]: one inner list: feature maps (B, C_l, F_l, N_l) then logits
            (B, 1, F') with F' about T / (hop_length * 8).
        """
        x = complex_stft(wav, self.window, self.n_fft, self.hop_length, center=True)
        x = F.leaky_relu(self.conv_in(x), self.negative_slope)
        outs = [x]
        for unit in self.units:
            x = unit(x)
            outs.append(x)
        outs.append(self.post(x).squeeze(-1))  # (B, 1, F', 1) -> (B, 1, F')
        return [outs]


_WEIGHT_NORM_KEYS = ("parametrizations.weight.original0", "parametrizations.weight.original1")


def _convert_first_conv(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: take the first conv's weights in either layout.

    A state dict written with the other ``norm_first_conv`` setting (e.g. a codectk
    checkpoint from before the first conv lost its weight norm) is converted in place:
    weight-norm (g, v) -> the weight g v / ||v|| the normed conv computed (bit for bit,
    with the same ``torch._weight_norm``), or a plain weight w -> (g, v) = (||w||, w).
    """
    base = f"{prefix}convs.0."
    g_key, v_key = (base + k for k in _WEIGHT_NORM_KEYS)
    if not module.norm_first_conv and g_key in state_dict and v_key in state_dict:
        g, v = state_dict.pop(g_key), state_dict.pop(v_key)
        state_dict[base + "weight"] = torch._weight_norm(v, g, 0)
    elif module.norm_first_conv and base + "weight" in state_dict:
        w = state_dict.pop(base + "weight")
        state_dict[g_key] = torch.linalg.vector_norm(w, dim=(1, 2, 3), keepdim=True)
        state_dict[v_key] = w


class ScaleSTFTDiscriminator(nn.Module):
    """One EnCodec STFT sub-discriminator (``DiscriminatorSTFT`` in Défossez et al. 2022).

    Conv (kernel_size) from the 2 STFT channels to ``filters``; one conv per dilation d
    with kernel ``kernel_size``, stride ``stride`` and dilation (d, 1) (time); a 3x3 conv;
    a 3x3 conv to 1 logit channel. Channels grow by ``filters_scale`` per layer up to
    ``max_filters``. LeakyReLU after every conv but the last; weight norm on every conv
    but the first, as in every authors' copy (audiocraft ``msstftd.py:62-79``, encodec,
    AcademiCodec, FunCodec, LaDiffCodec); ``norm_first_conv`` weight-normalises it too
    (codectk before this option). Checkpoints of either layout load into both
    (:func:`_convert_first_conv`).

    Args:
        n_fft (int), hop_length (int), win_length (int): STFT sizes in samples.
        filters (int), max_filters (int), filters_scale (int): channel schedule.
        kernel_size (list[int]): odd (time, frequency) kernel.
        stride (list[int]): (time, frequency) stride of the dilated convs.
        dilations (list[int]): time dilations.
        negative_slope (float): LeakyReLU slope.
        normalized (bool): divide the STFT by the window's L2 norm.
        norm_first_conv (bool): weight-normalise the first conv too.
    """

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        win_length: int,
        filters: int,
        max_filters: int,
        filters_scale: int,
        kernel_size: list[int],
        stride: list[int],
        dilations: list[int],
        negative_slope: float,
        normalized: bool,
        norm_first_conv: bool = False,
    ):
        super().__init__()
        self.n_fft, self.hop_length, self.negative_slope = n_fft, hop_length, negative_slope
        self.normalized = normalized
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        kt, kf = kernel_size
        self.norm_first_conv = norm_first_conv
        first = nn.Conv2d(2, filters, (kt, kf), padding=(kt // 2, kf // 2))
        convs = [normed(first) if norm_first_conv else first]
        in_ch = min(filters_scale * filters, max_filters)
        for i, d in enumerate(dilations):
            out_ch = min(filters_scale ** (i + 1) * filters, max_filters)
            pad = ((kt - 1) * d // 2, kf // 2)
            conv = nn.Conv2d(in_ch, out_ch, (kt, kf), tuple(stride), padding=pad, dilation=(d, 1))
            convs.append(normed(conv))
            in_ch = out_ch
        out_ch = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
        convs.append(normed(nn.Conv2d(in_ch, out_ch, kt, padding=kt // 2)))
        self.convs = nn.ModuleList(convs)
        self.post = normed(nn.Conv2d(out_ch, 1, kt, padding=kt // 2))
        self.register_load_state_dict_pre_hook(_convert_first_conv)

    def forward(self, wav: Tensor) -> list[Tensor]:
        """Discriminate at one STFT resolution.

        Args:
            wav (Tensor): waveform, shape (B, 1, T), T >= n_fft.

        Returns:
            list[Tensor]: feature maps (B, C_l, F, N_l), then logits (B, 1, F, N_L).
        """
        x = complex_stft(wav, self.window, self.n_fft, self.hop_length, False, self.normalized)
        return conv_stack(x, self.convs, self.post, self.negative_slope)


@DISCRIMINATORS.register("ms_stft")
class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec's multi-scale STFT discriminator (Défossez et al. 2022, §3.4).

    Defaults are the paper's: 5 scales with windows [2048, 1024, 512, 256, 128] samples,
    hops ``n_fft // 4``, 32 filters, kernel (3, 9), stride (1, 2) over frequency,
    dilations (1, 2, 4) over time, LeakyReLU(0.2), weight norm on every conv but the
    first (as the authors' code), window-normalised STFT without centring
    (``center=False``, so T >= max(n_ffts)). The authors' training config (audiocraft
    1.3.0 ``config/solver/compression/default.yaml:71-80``) orders the scales
    [1024, 2048, 512, 256, 128] and uses LeakyReLU(0.3).

    Args:
        n_ffts (list[int] | None): FFT sizes in samples, one sub-discriminator each.
        hop_lengths (list[int] | None): hops (default ``n_fft // 4``).
        win_lengths (list[int] | None): Hann window lengths (default ``n_ffts``).
        filters (int): channels of the first conv.
        max_filters (int): channel cap.
        filters_scale (int): channel growth per layer.
        kernel_size (list[int] | None): odd (time, frequency) kernel (default [3, 9]).
        stride (list[int] | None): (time, frequency) stride (default [1, 2]).
        dilations (list[int] | None): time dilations (default [1, 2, 4]).
        negative_slope (float): LeakyReLU slope.
        normalized (bool): divide each STFT by its window's L2 norm.
        norm_first_conv (bool): weight-normalise each scale's first conv too (codectk's
            layout before it followed the authors'; either layout's checkpoints load).
        logits_pool (bool): average-pool each scale's logits over (frames, bins) with
            ``AvgPool2d(4, stride=2, padding=1, count_include_pad=False)``, as FunCodec's
            copy does (``funcodec/models/discriminator/encodec_disc.py:133,141``); the
            feature maps are not pooled.

    Raises:
        ValueError: lists of different lengths, a window longer than its FFT, or an even
            kernel size.
    """

    def __init__(
        self,
        n_ffts: list[int] | None = None,
        hop_lengths: list[int] | None = None,
        win_lengths: list[int] | None = None,
        filters: int = 32,
        max_filters: int = 1024,
        filters_scale: int = 1,
        kernel_size: list[int] | None = None,
        stride: list[int] | None = None,
        dilations: list[int] | None = None,
        negative_slope: float = 0.2,
        normalized: bool = True,
        norm_first_conv: bool = False,
        logits_pool: bool = False,
    ):
        super().__init__()
        n_ffts = [2048, 1024, 512, 256, 128] if n_ffts is None else n_ffts
        hop_lengths = [n // 4 for n in n_ffts] if hop_lengths is None else hop_lengths
        win_lengths = list(n_ffts) if win_lengths is None else win_lengths
        kernel_size = [3, 9] if kernel_size is None else kernel_size
        stride = [1, 2] if stride is None else stride
        dilations = [1, 2, 4] if dilations is None else dilations
        if not n_ffts or not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError(
                f"n_ffts {n_ffts}, hop_lengths {hop_lengths} and win_lengths {win_lengths} "
                "must be non-empty lists of one length"
            )
        if any(w > n for w, n in zip(win_lengths, n_ffts)):
            raise ValueError(f"win_lengths {win_lengths} must not exceed n_ffts {n_ffts}")
        if len(kernel_size) != 2 or any(k % 2 == 0 for k in kernel_size) or len(stride) != 2:
            raise ValueError(f"kernel_size {kernel_size} must be 2 odd ints, stride {stride} 2")
        self.discriminators = nn.ModuleList(
            ScaleSTFTDiscriminator(
                n,
                h,
                w,
                filters,
                max_filters,
                filters_scale,
                kernel_size,
                stride,
                dilations,
                negative_slope,
                normalized,
                norm_first_conv,
            )
            for n, h, w in zip(n_ffts, hop_lengths, win_lengths)
        )
        self.logits_pool = (
            nn.AvgPool2d(4, stride=2, padding=1, count_include_pad=False) if logits_pool else None
        )

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform at every STFT resolution.

        Args:
            wav (Tensor): waveform, shape (B, 1, T), T >= max(n_ffts).

        Returns:
            list[list[Tensor]]: per scale, feature maps (B, C_l, frames, bins_l) then
            logits (B, 1, frames, bins_L) (with ``logits_pool``: (B, 1, frames // 2,
            bins_L // 2)).
        """
        outs = [disc(wav) for disc in self.discriminators]
        if self.logits_pool is not None:
            outs = [[*o[:-1], self.logits_pool(o[-1])] for o in outs]
        return outs
