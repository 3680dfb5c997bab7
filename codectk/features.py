"""Spectral features in plain torch: mel filterbank and (log-)mel spectrogram.

torchaudio is not used (no build of it imports next to CPU torch 2.13); this module
replaces ``torchaudio.transforms.MelSpectrogram``. The filterbank follows librosa's
``librosa.filters.mel`` (Slaney's Auditory Toolbox mel scale and area normalisation
by default, or the HTK scale), and is tested against closed-form values.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from codectk.errors import check_choice

_F_SP = 200.0 / 3  # Slaney scale: Hz per mel below the break frequency
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(freq: Tensor, htk: bool = False) -> Tensor:
    """Convert frequencies in Hz to mels (Slaney scale, or HTK if ``htk``)."""
    freq = torch.as_tensor(freq, dtype=torch.float64)
    if htk:
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    linear = freq / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(freq, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(freq >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: Tensor, htk: bool = False) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = _F_SP * mel
    log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> Tensor:
    """Triangular mel filterbank, as ``librosa.filters.mel``.

    Args:
        sample_rate (int): sampling rate in Hz.
        n_fft (int): FFT size; the bank covers ``n_fft // 2 + 1`` frequency bins.
        n_mels (int): number of mel bands.
        f_min (float): lowest band edge in Hz.
        f_max (float | None): highest band edge in Hz (default ``sample_rate / 2``).
        htk (bool): HTK mel scale instead of Slaney's.
        norm (str | None): ``"slaney"`` divides each triangle by its width in Hz
            (constant energy per band); ``None`` leaves peaks at 1.

    Returns:
        Tensor: weights, shape (n_mels, n_fft // 2 + 1), float32.

    Raises:
        ValueError: for ``f_max`` above Nyquist, ``f_min >= f_max`` or an unknown ``norm``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if f_max > sample_rate / 2 or f_min < 0 or f_min >= f_max:
        raise ValueError(
            f"mel band edges f_min={f_min} f_max={f_max} must satisfy "
            f"0 <= f_min < f_max <= {sample_rate / 2}"
        )
    check_choice("norm", norm, ("slaney", None))
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min), htk)),
        float(hz_to_mel(torch.tensor(f_max), htk)),
        n_mels + 2,
        dtype=torch.float64,
    )
    mel_f = mel_to_hz(mels, htk)  # (n_mels + 2,) band edges in Hz
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)  # (n_mels, n_freqs)
    if norm == "slaney":
        weights = weights * (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.float()


class MelSpectrogram(nn.Module):
    """Log-mel (or linear mel) magnitude spectrogram of a waveform.

    Args:
        sample_rate (int): Hz.
        n_fft (int): FFT size in samples.
        hop_length (int): frame shift in samples.
        win_length (int | None): Hann window length in samples (default ``n_fft``).
        n_mels (int): mel bands.
        f_min (float), f_max (float | None): band edges in Hz.
        power (float): 1 for magnitude, 2 for power.
        log (bool): return ``log10(clamp(mel, min=eps))``.
        eps (float): floor before the log.
        center (bool): reflect-pad so frames are centred (as librosa).
        htk (bool): HTK mel scale instead of Slaney's (see :func:`mel_filterbank`).
        norm (str | None): filterbank normalisation, ``"slaney"`` or None (unit peaks;
            with ``htk`` this is ``torchaudio.transforms.MelSpectrogram``'s default bank).
        power_floor (float): floor on |X|^2 before the power is taken (0: none; Parallel
            WaveGAN and AudioDec: sqrt(max(|X|^2, 1e-10)), ``losses/mel_loss.py:89-90``).
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 1.0,
        log: bool = True,
        eps: float = 1e-5,
        center: bool = True,
        htk: bool = False,
        norm: str | None = "slaney",
        power_floor: float = 0.0,
    ):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.win_length = win_length or n_fft
        self.power, self.log, self.eps, self.center = power, log, eps, center
        self.power_floor = power_floor
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer(
            "fbank",
            mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, htk, norm),
            persistent=False,
        )

    def forward(self, wav: Tensor) -> Tensor:
        """Compute the spectrogram.

        Args:
            wav (Tensor): waveform, shape (B, 1, T) or (B, T).

        Returns:
            Tensor: shape (B, n_mels, frames).
        """
        if wav.dim() == 3:
            wav = wav.squeeze(1)  # (B, T)
        spec = torch.stft(
            wav.float(),
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=self.center,
            pad_mode="reflect",
            return_complex=True,
        )  # (B, n_fft // 2 + 1, frames)
        if self.power_floor > 0:
            power = (spec.real**2 + spec.imag**2).clamp(min=self.power_floor)
            mag = power.pow(self.power / 2)
        else:
            mag = spec.abs().pow(self.power)
        mel = torch.matmul(self.fbank, mag)  # (B, n_mels, frames)
        return torch.log10(torch.clamp(mel, min=self.eps)) if self.log else mel
