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

from torch import Tensor, nn

from codectk.losses.adversarial import (
    LOSS_TYPES,
    discriminator_objective,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codectk.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss
from codectk.losses.terms import add_quantizer_terms, weighted_total
from codectk.registry import Registry

LOSSES = Registry("loss")

DiscOutputs = list[list[Tensor]]


@LOSSES.register("codec_gan")
class CodecGANLoss(nn.Module):
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
        super().__init__()
        if adversarial_loss_type not in LOSS_TYPES:
            raise ValueError(
                f"adversarial_loss_type {adversarial_loss_type!r} not supported; "
                f"choose one of {list(LOSS_TYPES)}"
            )
        self.weights = {
            "mel": float(lambda_mel),
            "stft": float(lambda_stft),
            "time": float(lambda_time),
            "adv": float(lambda_adv),
            "feat": float(lambda_feat),
            "commit": float(lambda_commit),
            "codebook": float(lambda_codebook),
        }
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        self.adversarial_loss_type = adversarial_loss_type
        self.mel_loss = (
            MultiScaleMelLoss(sample_rate, mel_windows, mel_n_mels) if lambda_mel > 0 else None
        )
        self.stft_loss = MultiResolutionSTFTLoss(stft_resolutions) if lambda_stft > 0 else None

    def generator(
        self,
        wav: Tensor,
        wav_hat: Tensor,
        fake_outs: DiscOutputs | None = None,
        real_outs: DiscOutputs | None = None,
        commitment_loss: Tensor | None = None,
        codebook_loss: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator objective L_G.

        Args:
            wav (Tensor): reference x, shape (B, 1, T).
            wav_hat (Tensor): reconstruction x̂, shape (B, 1, T).
            fake_outs (list[list[Tensor]] | None): discriminator outputs on ``wav_hat``
                (not detached); None before discriminator training starts, which skips
                the adversarial and feature-matching terms.
            real_outs (list[list[Tensor]] | None): discriminator outputs on ``wav``; None
                skips feature matching.
            commitment_loss (Tensor | None): scalar from the quantizer (None: skipped).
            codebook_loss (Tensor | None): scalar from the quantizer (None: skipped).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: the weighted total (with graph) and the
            unweighted, detached terms under "mel", "stft", "time", "adv", "feat",
            "commit", "codebook" (those computed) plus the detached "total".

        Raises:
            ValueError: ``wav`` and ``wav_hat`` differ in shape.
        """
        if wav.shape != wav_hat.shape:
            raise ValueError(f"wav {tuple(wav.shape)} and wav_hat {tuple(wav_hat.shape)} differ")
        w = self.weights
        terms: dict[str, Tensor] = {}
        if self.mel_loss is not None:
            terms["mel"] = self.mel_loss(wav, wav_hat)
        if self.stft_loss is not None:
            terms["stft"] = self.stft_loss(wav, wav_hat)
        if w["time"] > 0:
            terms["time"] = (wav - wav_hat).abs().mean()
        if fake_outs is not None and w["adv"] > 0:
            terms["adv"] = generator_adversarial_loss(fake_outs, self.adversarial_loss_type)
        if fake_outs is not None and real_outs is not None and w["feat"] > 0:
            terms["feat"] = feature_matching_loss(real_outs, fake_outs)
        add_quantizer_terms(terms, w, commitment_loss, codebook_loss)
        return weighted_total(terms, w, wav_hat)

    def discriminator(
        self, real_outs: DiscOutputs, fake_outs: DiscOutputs
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator objective L_D (SoundStream eq. 1 for hinge, LSGAN for mse).

        Args:
            real_outs (list[list[Tensor]]): discriminator outputs on real audio.
            fake_outs (list[list[Tensor]]): outputs on the detached reconstruction.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: total, and detached "real", "fake", "total".
        """
        return discriminator_objective(real_outs, fake_outs, self.adversarial_loss_type)
