"""LaDiffCodec's autoencoder objective (``loss: ladiffcodec_ae``), as the authors' code
trains with ``--use_disc``.

Yang, Jang, Kim, "Generative De-Quantization for Neural Speech Codec via Latent
Diffusion", ICASSP 2024; written from LaDiffCodec's ``srcs/train.py:57-107,124-149``
(``run_gen_loss``, ``run_disc_loss``, ``run_model``), ``srcs/losses/losses_fn.py:18-37,56-65``
(``melspec_loss_fn``, ``ClippedSDR``) and ``srcs/model.py:194,216-221``::

    L_G = lambda_time mean |x - x̂| + lambda_mel L_mel + lambda_adv L_adv
          + lambda_feat L_feat + lambda_sdr L_sdr (+ lambda_commit L_commit)
    L_D = (1/K) sum_k mean [ relu(1 - D_k(x)) + relu(1 + D_k(x̂)) ]

with the authors' 0.1, 1, 3, 3, 0.1 (``g_loss = 0.1 l_t + l_f + 3 l_g + 3 l_feat
+ 0.1 l_orig``; ``l_orig`` is the model's first loss: the negative SD-SDR for the
continuous autoencoder, plus the quantizer's loss for the discrete codec).

* L_mel: for each window s, a magnitude mel spectrogram (torchaudio's
  ``MelSpectrogram(n_fft=s, hop_length=s/4, n_mels=64, normalized=True, center=False,
  power=1)``: Hann window, STFT divided by the window's L2 norm, HTK mel scale without
  area normalisation, 0 Hz to fs / 2) and (sum |M - M̂| + sum (M - M̂)^2) / (8 T), sums over
  batch, bands and frames, T the clip length in samples. The authors' loop computes the
  windows 2^5..2^11 but adds only the last one (the sum sits after the loop,
  ``losses_fn.py:23-33``), so their loss is the 2048 window alone; ``loss_conf.mel.windows``
  lists the windows that count.
* L_adv: hinge, (1/K) sum_k mean relu(1 - D_k(x̂)).
* L_feat: relative feature matching, (1/(K L)) sum_{k,l} mean |D_k^l(x) - D_k^l(x̂)| /
  mean |D_k^l(x)| (as EnCodec's).
* L_sdr: asteroid's negative SD-SDR (Le Roux et al., "SDR - half-baked or well done?",
  ICASSP 2019) clipped below at ``sdr_clip`` (-30 dB: above 30 dB SD-SDR it is constant),
  averaged over the batch. The authors call ``sdr_loss(x, x_hat)``, i.e. with the
  *reference* as asteroid's estimate and the reconstruction as its target:
  SD-SDR = 10 log10(<x, x̂>^2 / ||x̂||^2 / ||x - x̂||^2) after removing the means; we
  follow that order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from codectk.features import mel_filterbank
from codectk.losses.objective import LOSSES, GANObjective
from codectk.losses.spectral import check_waveform_pair

_EPS = 1e-8  # asteroid's


def neg_sd_sdr(est: Tensor, target: Tensor, eps: float = _EPS) -> Tensor:
    """Negative scale-dependent SDR in dB per example (asteroid's ``MultiSrcNegSDR
    ("sdsdr")``, zero-mean, one source).

    SD-SDR = 10 log10(||a t||^2 / (||e - t||^2 + eps) + eps) with a = <e, t> / (||t||^2 + eps),
    e and t the zero-mean ``est`` and ``target``.

    Args:
        est (Tensor): (B, 1, T).
        target (Tensor): (B, 1, T).

    Returns:
        Tensor: (B,) values in dB, negated.
    """
    est = est - est.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    dot = (est * target).sum(dim=-1, keepdim=True)
    scaled = dot * target / (target.pow(2).sum(dim=-1, keepdim=True) + eps)
    ratio = scaled.pow(2).sum(dim=-1) / ((est - target).pow(2).sum(dim=-1) + eps)
    return -(10 * torch.log10(ratio + eps)).mean(dim=-1)  # mean over the one source


class LaDiffCodecMelLoss(nn.Module):
    """LaDiffCodec's mel loss (see module doc).

    Args:
        sample_rate (int): Hz.
        windows (list[int] | None): window (= FFT) lengths s in samples, hop s / 4
            (default [2048], the one the authors' code adds).
        n_mels (int): mel bands.

    Raises:
        ValueError: a window shorter than 4 samples or an empty list.
    """

    def __init__(self, sample_rate: int, windows: list[int] | None = None, n_mels: int = 64):
        super().__init__()
        windows = [2048] if windows is None else list(windows)
        if not windows or min(windows) < 4:
            raise ValueError(f"windows must be a non-empty list of ints >= 4, got {windows}")
        self.windows = windows
        for s in windows:
            fb = mel_filterbank(sample_rate, s, n_mels, htk=True, norm=None)
            self.register_buffer(f"fbank{s}", fb, persistent=False)
            self.register_buffer(f"window{s}", torch.hann_window(s), persistent=False)

    def mel(self, wav: Tensor, s: int) -> Tensor:
        """Magnitude mel (B, n_mels, F) of a waveform (B, 1, T), window ``s``."""
        window = getattr(self, f"window{s}").to(wav.dtype)
        spec = torch.stft(wav.squeeze(1), s, s // 4, s, window, center=False, return_complex=True)
        mag = spec.abs() / window.pow(2).sum().sqrt()  # (B, s / 2 + 1, F), "normalized"
        return torch.matmul(getattr(self, f"fbank{s}").to(wav.dtype), mag)

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """sum over windows of (sum |M - M̂| + sum (M - M̂)^2) / (8 T).

        Raises:
            ValueError: shapes differ or are not (B, 1, T).
        """
        check_waveform_pair(ref, est)
        total = ref.new_zeros(())
        for s in self.windows:
            d = self.mel(ref, s) - self.mel(est, s)
            total = total + d.abs().sum() + d.pow(2).sum()
        return total / (8 * ref.shape[-1])


@LOSSES.register("ladiffcodec_ae")
class LaDiffCodecAELoss(GANObjective):
    """LaDiffCodec's generator and discriminator objectives (see module doc).

    Terms (``weights``, the authors'): "time" 0.1 (waveform L1), "mel" 1, "adv" 3 (hinge),
    "feat" 3 (relative feature matching), "sdr" 0.1 (clipped negative SD-SDR), "commit" 0
    (the quantizer's loss: the continuous autoencoder has none; the authors' discrete
    codec: 0.1, inside ``l_orig``). The quantizer's codebook loss is not a term: the
    authors' loop has none (the continuous autoencoder's is 0, their RVQ's codebooks are
    EMA).

    Args:
        sample_rate, weights: as every family's (:class:`~codectk.losses.objective.GANObjective`).
        mel (dict | None): :class:`LaDiffCodecMelLoss`'s arguments (default the window
            2048, 64 bands).
        sdr_clip (float): lower bound of the negative SD-SDR in dB.

    Raises:
        ConfigError (a ValueError): as every family's (unknown term or key, negative weight).
        ValueError: a bad mel configuration.
    """

    WEIGHTS = dict(time=0.1, mel=1.0, adv=3.0, feat=3.0, sdr=0.1, commit=0.0)

    def __init__(
        self,
        sample_rate: int,
        weights: dict[str, float] | None = None,
        mel: dict[str, Any] | None = None,
        sdr_clip: float = -30.0,
    ):
        super().__init__(weights, "hinge", feature_matching="relative")
        self.sdr_clip = float(sdr_clip)
        self.spectral("mel", LaDiffCodecMelLoss, mel, sample_rate=sample_rate)

    def sdr_loss(self, wav: Tensor, wav_hat: Tensor) -> Tensor:
        """Clipped negative SD-SDR, mean over the batch, in the authors' argument order."""
        return neg_sd_sdr(wav, wav_hat).clamp(min=self.sdr_clip).mean()
