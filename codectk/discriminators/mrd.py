"""DAC's multi-band multi-resolution complex-STFT discriminator (``discriminator: mrd``).

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), NeurIPS 2023,
§3.3: one sub-discriminator per STFT window length (2048, 1024, 512; hop = window / 4);
each splits the complex spectrogram into frequency bands (edges 0, 0.1, 0.25, 0.5, 0.75,
1 of the bins), runs a separate 2-D conv stack on every band and a shared output conv on
the bands concatenated back along frequency. Layout as the authors' ``MRD``:

* Input (B, 2, frames, bins): real and imaginary parts of an un-normalised Hann-window
  STFT framed so that frames = ceil(T / hop) ("match_stride": the waveform is
  reflect-padded by (n_fft - hop) / 2 on both sides, plus up to hop - 1 on the right,
  centred frames are taken and the two first and last dropped).
* Per band: Conv(3x9, 2 -> 32), 3 x Conv(3x9, stride (1, 2)), Conv(3x3), each weight-
  normalised and followed by LeakyReLU(0.1); then Conv(3x3, 32 -> 1) on the concatenation.

Outputs follow the repository convention: per sub-discriminator, the band stacks' feature
maps (band by band) and then the logits (B, 1, frames, bins').
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.discriminators import DISCRIMINATORS
from codectk.discriminators.waveform import normed

DAC_BAND_EDGES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def match_stride_stft(wav: Tensor, window: Tensor, hop_length: int) -> Tensor:
    """Complex STFT with ceil(T / hop) frames, as channels (audiotools ``match_stride``).

    Args:
        wav (Tensor): waveform (B, 1, T).
        window (Tensor): (n_fft,) analysis window; n_fft - hop_length must be even.
        hop_length (int): hop in samples.

    Returns:
        Tensor: (B, 2, ceil(T / hop_length), n_fft // 2 + 1), real and imaginary parts.

    Raises:
        ValueError: ``wav`` is not (B, 1, T) or too short to reflect-pad.
    """
    if wav.dim() != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected a waveform of shape (B, 1, T), got {tuple(wav.shape)}")
    n_fft, length = window.shape[0], wav.shape[-1]
    pad = (n_fft - hop_length) // 2
    right = math.ceil(length / hop_length) * hop_length - length
    if length <= pad + right:
        raise ValueError(f"waveform of {length} samples is too short for n_fft={n_fft}")
    x = F.pad(wav, (pad, pad + right), mode="reflect").squeeze(1)  # (B, T')
    spec = torch.stft(
        x, n_fft, hop_length, n_fft, window, center=True, pad_mode="reflect", return_complex=True
    )  # (B, bins, ceil(T / hop) + 4)
    spec = spec[..., 2:-2]  # drop the frames added by the padding
    return torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, frames, bins)


class BandSTFTDiscriminator(nn.Module):
    """One DAC ``MRD``: band-split conv stacks on one STFT resolution.

    Args:
        n_fft (int): window and FFT length (samples).
        hop_length (int): hop (samples); n_fft - hop_length must be even.
        band_edges (list[float]): increasing fractions of the n_fft // 2 + 1 bins.
        channels (int): channels of every conv.
        negative_slope (float): LeakyReLU slope.

    Raises:
        ValueError: band edges that are not increasing within [0, 1], or a band with no bin.
    """

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        band_edges: list[float],
        channels: int,
        negative_slope: float,
    ):
        super().__init__()
        n_bins = n_fft // 2 + 1
        edges = [int(e * n_bins) for e in band_edges]
        if any(b <= a for a, b in zip(edges, edges[1:])) or not 0 <= band_edges[0]:
            raise ValueError(
                f"band_edges {band_edges} give empty or unordered bands of {n_bins} bins"
            )
        if band_edges[-1] > 1:
            raise ValueError(f"band_edges {band_edges} must lie in [0, 1]")
        self.bands = list(zip(edges, edges[1:]))
        self.hop_length, self.negative_slope = hop_length, negative_slope
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                [
                    normed(nn.Conv2d(2, c, (3, 9), padding=(1, 4))),
                    *(normed(nn.Conv2d(c, c, (3, 9), (1, 2), padding=(1, 4))) for _ in range(3)),
                    normed(nn.Conv2d(c, c, 3, padding=1)),
                ]
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = normed(nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, wav: Tensor) -> list[Tensor]:
        """Discriminate at one resolution.

        Args:
            wav (Tensor): waveform (B, 1, T).

        Returns:
            list[Tensor]: 5 feature maps per band (B, C, frames, bins_l), then logits
            (B, 1, frames, sum of the bands' final bins).
        """
        spec = match_stride_stft(wav, self.window, self.hop_length)  # (B, 2, frames, bins)
        outs, finals = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            x = spec[..., lo:hi]  # (B, 2, frames, hi - lo)
            for conv in convs:
                x = F.leaky_relu(conv(x), self.negative_slope)
                outs.append(x)
            finals.append(x)
        outs.append(self.conv_post(torch.cat(finals, dim=-1)))  # concatenate along bins
        return outs


@DISCRIMINATORS.register("mrd")
class MultiBandSTFTDiscriminator(nn.Module):
    """DAC's multi-band multi-resolution STFT discriminator (DAC §3.3; see module doc).

    Args:
        fft_sizes (list[int] | None): window lengths, one sub-discriminator each
            (default [2048, 1024, 512]).
        hop_factor (float): hop = int(window * hop_factor) (default 0.25).
        band_edges (list[float] | None): band edges as fractions of the bins (default
            [0, 0.1, 0.25, 0.5, 0.75, 1]).
        channels (int): conv channels (32).
        negative_slope (float): LeakyReLU slope (0.1).

    Raises:
        ValueError: empty ``fft_sizes``, a hop that does not leave an even n_fft - hop, or
            bad band edges.
    """

    def __init__(
        self,
        fft_sizes: list[int] | None = None,
        hop_factor: float = 0.25,
        band_edges: list[float] | None = None,
        channels: int = 32,
        negative_slope: float = 0.1,
    ):
        super().__init__()
        fft_sizes = [2048, 1024, 512] if fft_sizes is None else fft_sizes
        band_edges = list(DAC_BAND_EDGES) if band_edges is None else band_edges
        if not fft_sizes or len(band_edges) < 2:
            raise ValueError(
                f"fft_sizes {fft_sizes} must not be empty; band_edges {band_edges} need >= 2"
            )
        hops = [int(n * hop_factor) for n in fft_sizes]
        if any(h < 1 or (n - h) % 2 for n, h in zip(fft_sizes, hops)):
            raise ValueError(
                f"hop_factor {hop_factor} gives hops {hops} for fft_sizes {fft_sizes}; "
                "each n_fft - hop must be even and positive"
            )
        self.discriminators = nn.ModuleList(
            BandSTFTDiscriminator(n, h, band_edges, channels, negative_slope)
            for n, h in zip(fft_sizes, hops)
        )

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform at every resolution.

        Args:
            wav (Tensor): waveform (B, 1, T).

        Returns:
            list[list[Tensor]]: per resolution, the band feature maps then the logits.
        """
        return [disc(wav) for disc in self.discriminators]
