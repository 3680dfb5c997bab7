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

from codectk.errors import check_choice
from codectk.features import mel_filterbank
from codectk.losses.objective import LOSSES, MelGANObjective
from codectk.losses.spectral import MultiScaleMelLoss


def dac_mel_loss(
    sample_rate: int,
    windows: list[int] | None = None,
    n_mels: list[int] | None = None,
    log_weight: float = 1.0,
    mag_weight: float = 0.0,
    eps: float = 1e-5,
    hop_lengths: list[int] | None = None,
    power_floor: float = 0.0,
    mel_scale: str = "slaney",
) -> MultiScaleMelLoss:
    """DAC's multi-scale mel loss, *summed* over scales (the ``loss_conf.mel`` section of
    ``loss: dac`` and ``esc``): sum_s [mag_weight mean |S - Ŝ| + log_weight mean
    |log10 max(S, eps) - log10 max(Ŝ, eps)|] with magnitude mels S_s.

    Args:
        sample_rate (int): Hz.
        windows (list[int] | None): window lengths (default [32, ..., 2048]).
        n_mels (list[int] | None): mel bands per window (default [5, ..., 320]).
        log_weight (float): weight of the log10-mel L1 term of each scale.
        mag_weight (float): weight of the linear-mel L1 term of each scale (DAC: 0).
        eps (float): floor on mel magnitudes before the log (``clamp_eps``).
        hop_lengths (list[int] | None): frame shift per window in samples (default
            window / 4, DAC's; AudioDec's configs use the codec hop).
        power_floor (float): floor on |X|^2 before the mel magnitudes (0: none, DAC's;
            AudioDec: 1e-10).
        mel_scale (str): "slaney" (librosa's filterbank, DAC's) or "htk" (HTK scale
            without area normalisation: torchaudio's defaults, ESC's).

    Returns:
        MultiScaleMelLoss: the loss module (it averages over scales, so its weights are
        multiplied by the number of scales; ln -> log10 divides by ln 10).

    Raises:
        ValueError: a bad mel configuration or an unknown ``mel_scale``.
    """
    check_choice("mel_scale", mel_scale, ("slaney", "htk"))
    windows = [2**i for i in range(5, 12)] if windows is None else windows
    n_mels = [5 * 2**i for i in range(7)] if n_mels is None else n_mels
    n = len(windows)
    loss = MultiScaleMelLoss(
        sample_rate,
        windows,
        n_mels,
        mag_weight=mag_weight * n,
        log_weights=[log_weight * n / math.log(10)] * n,
        log_distance="l1",
        eps=eps,
        hop_lengths=hop_lengths,
        power_floor=power_floor,
    )
    if mel_scale == "htk":
        for mel in loss.mels:
            fbank = mel_filterbank(sample_rate, mel.n_fft, mel.fbank.shape[0], htk=True, norm=None)
            mel.fbank = fbank.to(mel.fbank.dtype)
    return loss


@LOSSES.register("dac")
class DACLoss(MelGANObjective):
    """DAC's generator and discriminator objectives (see module doc).

    Terms (``weights``, DAC's defaults): "mel" 15 (the summed multi-scale mel loss), "adv"
    1 (summed LSGAN generator loss), "feat" 2 (summed feature matching), "commit" 0.25,
    "codebook" 1. ``loss_conf.mel`` holds :func:`dac_mel_loss`'s arguments (arguments and
    errors as :class:`~codectk.losses.objective.MelGANObjective`).
    """

    WEIGHTS = dict(mel=15.0, adv=1.0, feat=2.0, commit=0.25, codebook=1.0)
    ADVERSARIAL = dict(
        adversarial_loss_type="mse", feature_matching="summed", sum_over_discriminators=True
    )
    MEL_LOSS = staticmethod(dac_mel_loss)
