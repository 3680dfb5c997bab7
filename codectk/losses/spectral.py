"""Spectral reconstruction losses and distances: multi-scale mel, multi-resolution STFT.

References:
    Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", TASLP 2021, §3.4,
    multi-scale spectral reconstruction loss (after Gritsenko et al. 2020 / DDSP).
    Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), NeurIPS
    2023, §3.4 (multi-scale log-mel L1 with per-window mel bands).
    Yamamoto et al., "Parallel WaveGAN", ICASSP 2020, §2.3, eqs. 1-4 (multi-resolution
    STFT loss).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.features import MelSpectrogram

# Parallel WaveGAN's (n_fft, hop_length, win_length) triples, §4.1.2 / Table 1.
PWG_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def _as_batch(wav: Tensor, name: str) -> Tensor:
    """(B, 1, T) or (B, T) -> (B, T); anything else raises ValueError."""
    if wav.dim() == 3 and wav.shape[1] == 1:
        return wav.squeeze(1)  # (B, T)
    if wav.dim() == 2:
        return wav
    raise ValueError(f"{name} must have shape (B, 1, T) or (B, T), got {tuple(wav.shape)}")


def check_waveform_pair(ref: Tensor, est: Tensor) -> None:
    """Raise ValueError unless ``ref`` and ``est`` are both (B, 1, T) of one shape."""
    if ref.shape != est.shape or ref.dim() != 3 or ref.shape[1] != 1:
        raise ValueError(
            f"ref {tuple(ref.shape)} and est {tuple(est.shape)} must both be (B, 1, T)"
        )


def _pair(ref: Tensor, est: Tensor, trim: bool) -> tuple[Tensor, Tensor]:
    """Bring ``ref`` and ``est`` to (B, T) with equal T (trimming both if ``trim``)."""
    ref, est = _as_batch(ref, "ref"), _as_batch(est, "est")
    if ref.shape[0] != est.shape[0]:
        raise ValueError(f"batch sizes differ: ref {ref.shape[0]}, est {est.shape[0]}")
    if trim:
        n = min(ref.shape[-1], est.shape[-1])
        ref, est = ref[..., :n], est[..., :n]
    elif ref.shape != est.shape:
        raise ValueError(f"ref {tuple(ref.shape)} and est {tuple(est.shape)} differ in length")
    return ref, est


class MultiScaleMelLoss(nn.Module):
    """Multi-scale mel-spectrogram loss (SoundStream §3.4; DAC's variant by configuration).

    For each window length s (hop s / 4 unless ``hop_lengths`` is given, Hann window,
    ``n_mels`` bands), with mel
    magnitude frames S_t^s, the SoundStream loss (§3.4, L_rec) is::

        L = sum_s sum_t ||S_t^s(x) - S_t^s(x̂)||_1 + alpha_s ||log S_t^s(x) - log S_t^s(x̂)||_2

    with s in 2^6..2^11, 64 bands and alpha_s = sqrt(s / 2). We implement it scale-free:
    ``(1 / |S|) sum_s [mag_weight * mean_{b,m,t} |S - Ŝ|  +  alpha_s * mean_{b,t}
    ||log S_t - log Ŝ_t||_2]``, i.e. sums over frames become means and scales are
    averaged (as EnCodec's L_f, Défossez et al. 2022 eq. 2), so the value does not grow
    with the clip length. ``log`` is ln(max(S, 1e-5)). With ``log_distance="l1"`` the
    log term is instead mean_{b,m,t} |log S - log Ŝ|; DAC's loss (mel bands [5, 10, 20,
    40, 80, 160, 320] for windows [32, ..., 2048], L1 of log10 mels, no magnitude term)
    is ``n_mels=[5, ..., 320], mag_weight=0, log_weights=[1 / ln 10] * 7,
    log_distance="l1"``.

    Args:
        sample_rate (int): Hz.
        windows (list[int] | None): window (= FFT) lengths s in samples, each >= 4
            (default [64, 128, 256, 512, 1024, 2048]).
        n_mels (int | list[int]): mel bands, one value or one per window.
        mag_weight (float): weight of the linear mel L1 term.
        log_weights (list[float] | None): alpha_s per window (default sqrt(s / 2)).
        log_distance (str): "l2" (per-frame Euclidean norm, SoundStream) or "l1".
        eps (float): floor on mel magnitudes before the log.
        hop_lengths (list[int] | None): frame shift per window in samples (default
            s / 4; AudioDec uses the codec hop, e.g. [300] for its 2048 window).
        power_floor (float): floor on |X|^2 before the magnitude (0: none; AudioDec 1e-10,
            see :class:`~codectk.features.MelSpectrogram`).

    Raises:
        ValueError: bad windows or hops, list lengths that do not match, or an unknown
            ``log_distance``.
    """

    def __init__(
        self,
        sample_rate: int,
        windows: list[int] | None = None,
        n_mels: int | list[int] = 64,
        mag_weight: float = 1.0,
        log_weights: list[float] | None = None,
        log_distance: str = "l2",
        eps: float = 1e-5,
        hop_lengths: list[int] | None = None,
        power_floor: float = 0.0,
    ):
        super().__init__()
        windows = [2**i for i in range(6, 12)] if windows is None else windows
        hop_lengths = [s // 4 for s in windows] if hop_lengths is None else list(hop_lengths)
        n_mels = [n_mels] * len(windows) if isinstance(n_mels, int) else n_mels
        log_weights = [math.sqrt(s / 2) for s in windows] if log_weights is None else log_weights
        if not windows or min(windows) < 4:
            raise ValueError(f"windows must be a non-empty list of ints >= 4, got {windows}")
        if not len(n_mels) == len(log_weights) == len(hop_lengths) == len(windows):
            raise ValueError(
                f"n_mels {n_mels}, log_weights {log_weights} and hop_lengths {hop_lengths} "
                f"need one value per window {windows}"
            )
        if min(hop_lengths) < 1:
            raise ValueError(f"hop_lengths must be positive ints, got {hop_lengths}")
        check_choice("log_distance", log_distance, ("l1", "l2"))
        self.mag_weight, self.log_weights = mag_weight, list(log_weights)
        self.log_distance, self.eps = log_distance, eps
        self.mels = nn.ModuleList(
            MelSpectrogram(sample_rate, s, h, n_mels=m, log=False, power_floor=power_floor)
            for s, h, m in zip(windows, hop_lengths, n_mels)
        )

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """Loss between a reference and an estimate.

        Args:
            ref (Tensor): reference waveform x, shape (B, 1, T) or (B, T).
            est (Tensor): estimate x̂, same shape.

        Returns:
            Tensor: scalar loss (0 when ``est`` equals ``ref``).

        Raises:
            ValueError: shapes differ.
        """
        ref, est = _pair(ref, est, trim=False)
        total = ref.new_zeros(())
        for mel, alpha in zip(self.mels, self.log_weights):
            s_ref, s_est = mel(ref), mel(est)  # (B, n_mels, frames)
            if self.mag_weight:
                total = total + self.mag_weight * (s_ref - s_est).abs().mean()
            diff = torch.log(s_ref.clamp(min=self.eps)) - torch.log(s_est.clamp(min=self.eps))
            if self.log_distance == "l2":
                log_term = torch.linalg.vector_norm(diff, dim=1).mean()  # norm over mel bands
            else:
                log_term = diff.abs().mean()
            total = total + alpha * log_term
        return total / len(self.mels)


class MultiResolutionSTFTLoss(nn.Module):
    """Multi-resolution STFT loss (Yamamoto et al. 2020, eqs. 1-4).

    Per resolution m with magnitudes |STFT(x)| (Hann window, centred frames,
    sqrt(max(re^2 + im^2, 1e-7)) as in Parallel WaveGAN):

    - spectral convergence (eq. 2): L_sc = || |X| - |X̂| ||_F / || |X| ||_F
      (Frobenius norms over the whole batch);
    - log magnitude (eq. 3): L_mag = (1 / N) || log|X| - log|X̂| ||_1.

    The loss (eq. 4) is (1 / M) sum_m (L_sc^m + L_mag^m).

    Args:
        resolutions (list[list[int]] | None): (n_fft, hop_length, win_length) triples in
            samples (default Parallel WaveGAN's [[1024, 120, 600], [2048, 240, 1200],
            [512, 50, 240]]).

    Raises:
        ValueError: a triple that is not 3 positive ints with win_length <= n_fft.
    """

    def __init__(self, resolutions: list[list[int]] | None = None):
        super().__init__()
        resolutions = [list(r) for r in PWG_RESOLUTIONS] if resolutions is None else resolutions
        for r in resolutions:
            if len(r) != 3 or min(r) < 1 or r[2] > r[0]:
                raise ValueError(
                    f"resolution {r} must be [n_fft, hop_length, win_length] "
                    "with win_length <= n_fft"
                )
        if not resolutions:
            raise ValueError("resolutions must not be empty")
        self.resolutions = [tuple(r) for r in resolutions]
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def _magnitude(self, wav: Tensor, i: int) -> Tensor:
        n_fft, hop, _ = self.resolutions[i]
        window = getattr(self, f"window{i}")
        spec = torch.stft(wav, n_fft, hop, window.shape[0], window, return_complex=True)
        return (spec.real**2 + spec.imag**2).clamp(min=1e-7).sqrt()  # (B, n_fft // 2 + 1, F)

    def terms(self, ref: Tensor, est: Tensor) -> tuple[Tensor, Tensor]:
        """Spectral convergence and log-magnitude terms, each averaged over resolutions.

        Args:
            ref (Tensor): reference waveform, shape (B, 1, T) or (B, T).
            est (Tensor): estimate, same shape.

        Returns:
            tuple[Tensor, Tensor]: scalars (L_sc, L_mag).

        Raises:
            ValueError: shapes differ.
        """
        ref, est = _pair(ref, est, trim=False)
        sc, mag = ref.new_zeros(()), ref.new_zeros(())
        for i in range(len(self.resolutions)):
            m_ref, m_est = self._magnitude(ref, i), self._magnitude(est, i)
            sc = sc + torch.linalg.norm(m_ref - m_est) / torch.linalg.norm(m_ref)
            mag = mag + (torch.log(m_ref) - torch.log(m_est)).abs().mean()
        n = len(self.resolutions)
        return sc / n, mag / n

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """L_sc + L_mag (eq. 4) as a scalar; arguments as :meth:`terms`."""
        sc, mag = self.terms(ref, est)
        return sc + mag
