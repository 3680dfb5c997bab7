"""The GAN codec training objective (``loss: codec_gan`` + ``loss_conf``).

Generator (SoundStream §3.4, eq. for L_G; EnCodec §3.4, eq. 4)::

    L_G = w_mel L_mel + w_stft L_stft + w_time ||x - x̂||_1 + w_adv L_G^adv
          + w_feat L_G^feat + w_commit L_commit + w_codebook L_codebook

with the weights w of ``loss_conf.weights``.

Discriminator (SoundStream eq. 1): L_D = L_real + L_fake.

References:
    Zeghidour et al., "SoundStream", TASLP 2021, §3.4 (lambda_adv = 1, lambda_feat = 100,
    lambda_rec = 1).
    Défossez et al., "High Fidelity Neural Audio Compression" (EnCodec), TMLR 2023, §3.4
    (lambda_t = 0.1 time L1, lambda_f = 1, lambda_g = 3, lambda_feat = 3, lambda_w = 1,
    used with its loss balancer and its relative feature matching).
    van den Oord et al., "Neural Discrete Representation Learning" (VQ-VAE), 2017, eq. 3.
"""

from __future__ import annotations

from typing import Any

from codectk.losses.objective import LOSSES, GANObjective
from codectk.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss


@LOSSES.register("codec_gan")
class CodecGANLoss(GANObjective):
    """Weighted sum of reconstruction, adversarial, feature-matching and VQ losses.

    Default weights are SoundStream's (§3.4): mel (its lambda_rec) 1, adv 1, feat 100,
    hinge losses, mel windows 2^6..2^11 with 64 bands; commit 1 as EnCodec's lambda_w;
    codebook 1 as VQ-VAE eq. 3 (the term is 0 with EMA codebooks); time and stft 0 (not in
    SoundStream). EnCodec's set (without its balancer) is time 0.1, mel 1, adv 3, feat 3,
    commit 1. A weight of 0 skips its term entirely.

    Terms (``weights``): "mel" (:class:`MultiScaleMelLoss`), "stft"
    (:class:`MultiResolutionSTFTLoss`), "time" (waveform L1, mean |x - x̂|), "adv", "feat"
    (SoundStream eq. 3), "commit", "codebook".

    Args:
        sample_rate, weights: as every family's (:class:`~codectk.losses.objective.GANObjective`).
        adversarial_loss_type (str): "hinge" (SoundStream) or "mse" (LSGAN/HiFi-GAN).
        mel (dict | None): :class:`MultiScaleMelLoss`'s arguments (default windows
            [64, ..., 2048], 64 bands); built only when "mel" is weighted.
        stft (dict | None): :class:`MultiResolutionSTFTLoss`'s arguments (default
            Parallel WaveGAN's resolutions); built only when "stft" is weighted.

    Raises:
        ConfigError (a ValueError): as every family's (unknown term or key, negative weight).
        ValueError: an unknown ``adversarial_loss_type`` or a bad mel/STFT configuration.
    """

    WEIGHTS = dict(mel=1.0, stft=0.0, time=0.0, adv=1.0, feat=100.0, commit=1.0, codebook=1.0)

    def __init__(
        self,
        sample_rate: int,
        weights: dict[str, float] | None = None,
        adversarial_loss_type: str = "hinge",
        mel: dict[str, Any] | None = None,
        stft: dict[str, Any] | None = None,
    ):
        super().__init__(weights, adversarial_loss_type, feature_matching="mean")
        self.mel_loss = self.stft_loss = None
        if self.weighted("mel"):
            self.spectral("mel", MultiScaleMelLoss, mel, sample_rate=sample_rate)
        if self.weighted("stft"):
            self.spectral("stft", MultiResolutionSTFTLoss, stft)
