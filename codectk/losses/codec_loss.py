"""The GAN codec training objective (``loss: codec_gan`` + ``loss_conf``).

Generator (SoundStream §3.4, eq. for L_G; EnCodec §3.4, eq. 4)::

    L_G = lambda_mel L_mel + lambda_stft L_stft + lambda_time ||x - x̂||_1
          + lambda_adv L_G^adv + lambda_feat L_G^feat
          + lambda_commit L_commit + lambda_codebook L_codebook

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

from torch import Tensor

from codectk.losses.objective import LOSSES, GANObjective
from codectk.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss


@LOSSES.register("codec_gan")
class CodecGANLoss(GANObjective):
    """Weighted sum of reconstruction, adversarial, feature-matching and VQ losses.

    Default weights are SoundStream's (§3.4): lambda_mel (its lambda_rec) = 1,
    lambda_adv = 1, lambda_feat = 100, hinge losses, mel windows 2^6..2^11 with 64 bands;
    lambda_commit = 1 as EnCodec's lambda_w; lambda_codebook = 1 as VQ-VAE eq. 3 (the term
    is 0 with EMA codebooks); lambda_time = lambda_stft = 0 (not in SoundStream). EnCodec's
    set (without its balancer) is lambda_time 0.1, lambda_mel 1, lambda_adv 3,
    lambda_feat 3, lambda_commit 1. A weight of 0 skips its term entirely.

    Args:
        sample_rate (int): Hz, for the mel filterbanks.
        lambda_mel (float): multi-scale mel loss (:class:`MultiScaleMelLoss`).
        lambda_stft (float): multi-resolution STFT loss (:class:`MultiResolutionSTFTLoss`).
        lambda_time (float): waveform L1, mean |x - x̂|.
        lambda_adv (float): generator adversarial loss.
        lambda_feat (float): feature matching (SoundStream eq. 3).
        lambda_commit (float): commitment loss from the quantizer.
        lambda_codebook (float): codebook loss from the quantizer.
        adversarial_loss_type (str): "hinge" (SoundStream) or "mse" (LSGAN/HiFi-GAN).
        mel_windows (list[int] | None): mel window lengths (default [64, ..., 2048]).
        mel_n_mels (int | list[int]): mel bands, one value or one per window.
        stft_resolutions (list[list[int]] | None): (n_fft, hop, win) triples (default
            Parallel WaveGAN's).

    Raises:
        ValueError: an unknown ``adversarial_loss_type``, a negative weight, or a bad
            mel/STFT configuration.
    """

    def __init__(
        self,
        sample_rate: int,
        lambda_mel: float = 1.0,
        lambda_stft: float = 0.0,
        lambda_time: float = 0.0,
        lambda_adv: float = 1.0,
        lambda_feat: float = 100.0,
        lambda_commit: float = 1.0,
        lambda_codebook: float = 1.0,
        adversarial_loss_type: str = "hinge",
        mel_windows: list[int] | None = None,
        mel_n_mels: int | list[int] = 64,
        stft_resolutions: list[list[int]] | None = None,
    ):
        weights = {
            "mel": lambda_mel,
            "stft": lambda_stft,
            "time": lambda_time,
            "adv": lambda_adv,
            "feat": lambda_feat,
            "commit": lambda_commit,
            "codebook": lambda_codebook,
        }
        super().__init__(weights, adversarial_loss_type, feature_matching="mean")
        self.mel_loss = (
            MultiScaleMelLoss(sample_rate, mel_windows, mel_n_mels) if lambda_mel > 0 else None
        )
        self.stft_loss = MultiResolutionSTFTLoss(stft_resolutions) if lambda_stft > 0 else None

    def reconstruction_terms(self, wav: Tensor, wav_hat: Tensor) -> dict[str, Tensor]:
        """ "mel", "stft" and "time" (waveform L1), those weighted."""
        terms: dict[str, Tensor] = {}
        if self.mel_loss is not None:
            terms["mel"] = self.mel_loss(wav, wav_hat)
        if self.stft_loss is not None:
            terms["stft"] = self.stft_loss(wav, wav_hat)
        if self.weighted("time"):
            terms["time"] = (wav - wav_hat).abs().mean()
        return terms
