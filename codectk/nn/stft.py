"""STFT and inverse STFT with "same" padding: T samples <-> exactly T / hop frames.

The waveform is reflect-padded by p = (n_fft - hop) / 2 samples on both sides and framed
without centring, so a length T = m * hop gives m frames and frame f is centred on the
middle of hop interval f (samples [f hop, (f + 1) hop)). The inverse overlap-adds the
windowed inverse FFTs (``torch.nn.functional.fold``), divides by the overlap-added squared
window (the least-squares inverse of Griffin & Lim, "Signal estimation from modified
short-time Fourier transform", IEEE TASSP 32(2), 1984) and removes the padding:
m frames give m * hop samples, and ``istft(stft(x)) == x`` up to rounding. Every kept
sample is covered by at least n_fft / hop - 1 windows away from their zeros, so the
division is well conditioned (unlike ``torch.istft(center=False)`` at the edges).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SameSTFT(nn.Module):
    """Hann-window STFT / iSTFT pair with "same" padding (see module doc).

    Args:
        n_fft (int): FFT and window size in samples; ``n_fft // 2 + 1`` bins.
        hop_length (int): frame shift in samples (< n_fft, n_fft - hop_length even).

    Raises:
        ValueError: for a hop not below ``n_fft`` or an odd ``n_fft - hop_length``.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if not 0 < hop_length < n_fft or (n_fft - hop_length) % 2:
            raise ValueError(
                f"hop_length {hop_length} must be below n_fft {n_fft} with an even difference"
            )
        self.n_fft, self.hop_length = n_fft, hop_length
        self.pad = (n_fft - hop_length) // 2
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def n_freq(self) -> int:
        """Frequency bins N = n_fft / 2 + 1."""
        return self.n_fft // 2 + 1

    def stft(self, wav: Tensor) -> Tensor:
        """Complex spectrogram.

        Args:
            wav (Tensor): (B, T) waveform, T a multiple of ``hop_length``.

        Returns:
            Tensor: complex (B, N, T / hop_length).

        Raises:
            ValueError: T is not a positive multiple of ``hop_length``.
        """
        if wav.dim() != 2 or wav.shape[-1] == 0 or wav.shape[-1] % self.hop_length:
            raise ValueError(
                f"wav must be (B, T) with T a multiple of {self.hop_length}, got {tuple(wav.shape)}"
            )
        mode = "reflect" if wav.shape[-1] > self.pad else "constant"
        x = F.pad(wav[:, None], (self.pad, self.pad), mode=mode)[:, 0]  # (B, T + 2p)
        return torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (B, N, T / hop)

    def istft(self, spec: Tensor) -> Tensor:
        """Waveform of a complex spectrogram (least-squares overlap-add).

        Args:
            spec (Tensor): complex (B, N, M).

        Returns:
            Tensor: (B, M * hop_length).
        """
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1)  # (B, n_fft, M)
        frames = frames * self.window[:, None]  # (n_fft, 1) broadcast over frames
        m = frames.shape[-1]
        length = (m - 1) * self.hop_length + self.n_fft
        fold = dict(
            output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
        )
        y = F.fold(frames, **fold)  # (B, 1, 1, length)
        wsq = self.window.square()[None, :, None].expand(1, -1, m)  # (1, n_fft, M)
        env = F.fold(wsq, **fold)  # (1, 1, 1, length)
        y = (y / env.clamp(min=1e-11))[:, 0, 0]  # (B, length)
        return y[:, self.pad : length - self.pad]
