"""DAC's training objective (``loss: dac``).

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), NeurIPS 2023,
§3.4 and the authors' ``scripts/train.py`` / ``dac/nn/loss.py`` / ``conf/final/*.yml``::

    L_G = 15 L_mel + 1 L_adv + 2 L_feat + 0.25 L_commit + 1 L_codebook
    L_D = sum_k [ mean D_k(x̂)^2 + mean (1 - D_k(x))^2 ]

* L_mel: multi-scale mel loss, *summed* over windows [32, 64, ..., 2048] (hop s / 4,
  Hann) with [5, 10, 20, 40, 80, 160, 320] mel bands: sum_s mean |log10 max(S_s(x), eps)
  - log10 max(S_s(x̂), eps)| (eps = 1e-5, magnitude mels, no linear term). It is
  :class:`~codectk.losses.spectral.MultiScaleMelLoss` with ``log_distance="l1"`` and
  log weights |S| / ln 10 (that class averages over scales; DAC sums).
* L_adv: least-squares GAN, sum_k mean (1 - D_k(x̂))^2 over the K sub-discriminators.
* L_feat: sum_k sum_l mean |D_k^l(x) - D_k^l(x̂)| over every feature map (not averaged).
* L_commit, L_codebook: the factorized quantizer's losses (summed over codebooks).

The sums are computed with the averaging helpers of :mod:`codectk.losses.adversarial`
times the number of sub-discriminators (and feature maps), so the weights above are
DAC's own.
"""

from __future__ import annotations

import math

from torch import Tensor

from codectk.losses.objective import LOSSES, GANObjective
from codectk.losses.spectral import MultiScaleMelLoss


@LOSSES.register("dac")
class DACLoss(GANObjective):
    """DAC's generator and discriminator objectives (see module doc).

    Args:
        sample_rate (int): Hz, for the mel filterbanks.
        lambda_mel (float): weight of the summed multi-scale mel loss.
        lambda_adv (float): weight of the summed LSGAN generator loss.
        lambda_feat (float): weight of the summed feature-matching loss.
        lambda_commit (float): weight of the commitment loss.
        lambda_codebook (float): weight of the codebook loss.
        mel_windows (list[int] | None): window lengths (default [32, ..., 2048]).
        mel_n_mels (list[int] | None): mel bands per window (default [5, ..., 320]).
        mel_log_weight (float): weight of the log10-mel L1 term of each scale.
        mel_mag_weight (float): weight of the linear-mel L1 term of each scale (DAC: 0).
        mel_eps (float): floor on mel magnitudes before the log (``clamp_eps``).
        mel_hop_lengths (list[int] | None): frame shift per window in samples (default
            window / 4, DAC's; AudioDec's configs use the codec hop).
        mel_power_floor (float): floor on |X|^2 before the mel magnitudes (0: none, DAC's;
            AudioDec: 1e-10).

    Raises:
        ValueError: a negative weight or a bad mel configuration.
    """

    def __init__(
        self,
        sample_rate: int,
        lambda_mel: float = 15.0,
        lambda_adv: float = 1.0,
        lambda_feat: float = 2.0,
        lambda_commit: float = 0.25,
        lambda_codebook: float = 1.0,
        mel_windows: list[int] | None = None,
        mel_n_mels: list[int] | None = None,
        mel_log_weight: float = 1.0,
        mel_mag_weight: float = 0.0,
        mel_eps: float = 1e-5,
        mel_hop_lengths: list[int] | None = None,
        mel_power_floor: float = 0.0,
    ):
        weights = {
            "mel": lambda_mel,
            "adv": lambda_adv,
            "feat": lambda_feat,
            "commit": lambda_commit,
            "codebook": lambda_codebook,
        }
        super().__init__(weights, "mse", feature_matching="summed", sum_over_discriminators=True)
        windows = [2**i for i in range(5, 12)] if mel_windows is None else mel_windows
        n_mels = [5 * 2**i for i in range(7)] if mel_n_mels is None else mel_n_mels
        n = len(windows)
        self.mel_loss = MultiScaleMelLoss(
            sample_rate,
            windows,
            n_mels,
            mag_weight=mel_mag_weight * n,  # x n: MultiScaleMelLoss averages over scales
            log_weights=[mel_log_weight * n / math.log(10)] * n,  # ln -> log10, and x n
            log_distance="l1",
            eps=mel_eps,
            hop_lengths=mel_hop_lengths,
            power_floor=mel_power_floor,
        )

    def reconstruction_terms(self, wav: Tensor, wav_hat: Tensor) -> dict[str, Tensor]:
        """ "mel", if weighted."""
        return {"mel": self.mel_loss(wav, wav_hat)} if self.weighted("mel") else {}
