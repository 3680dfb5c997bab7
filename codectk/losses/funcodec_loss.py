"""FunCodec's GAN objective for its codecs (``loss: funcodec``), e.g. FreqCodec.

Du, Zhang, Hu, Zheng, "FunCodec: A Fundamental, Reproducible and Integrable Open-source
Toolkit for Neural Speech Codec", ICASSP 2024; written from FunCodec 0.2.0's
``funcodec/models/codec_freq.py`` (``Audio2Mel`` lines 24-70, ``_forward_generator``
lines 455-562, ``_forward_discriminator`` lines 564-640)::

    L_G = lambda_time L1(x, x̂) + lambda_mel L_mel + lambda_adv L_adv + lambda_feat L_feat
          + lambda_commit L_commit
    L_D = (1/K) sum_k [ mean relu(1 - D_k(x)) + mean relu(1 + D_k(x̂)) ]

* L_mel (FunCodec's "multi_spectral_recon_loss"), averaged over the windows s (FunCodec's
  ``multi_spectral_window_powers_of_two`` [5..10]: 32..1024 samples): each scale takes a
  ``n_fft``-point STFT (1024 for every window, the Hann window of s samples zero-padded
  to it) at hop s / 4 of the waveform reflect-padded by (n_fft - hop) / 2 on both sides
  and not centred; the power spectrum P, the mel power M = mel_fb P (librosa's Slaney
  filterbank, ``n_mels`` bands, 0 to fs / 2) and their logs m = log10 max(M, 1e-5),
  p = log10 max(P, 1e-5). The scale's term is L1(m, m̂) + MSE(m, m̂); with
  ``power_spec_loss`` (the recipes' ``use_power_spec_loss: true``) it is
  0.5 [L1(m, m̂) + L1(p, p̂)] + 0.5 [MSE(m, m̂) + MSE(p, p̂)].
* L_adv: hinge, (1/K) sum_k mean relu(1 - D_k(x̂)).
* L_feat: mean of L1(D_k^l(x), D_k^l(x̂)) over every feature map l of every
  sub-discriminator k (one flat mean; the logits are not feature maps).
* L_commit: the quantizer's commitment loss. FunCodec also adds
  ``enc_quant_loss = MSE(z_q, z)^2``; with the straight-through z_q its gradient is zero
  (z_q - z does not depend on the parameters), so it is not computed here.

The generator report holds ``gen``, FunCodec's ``gen_loss`` (the weighted sum without
the commitment term): FunCodec updates the discriminator only on steps where its loss
exceeds the previous generator turn's ``gen_loss`` (``codec_freq.py:619-627``), a gate
the trainer applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.features import mel_filterbank
from codectk.losses.adversarial import (
    discriminator_objective,
    generator_adversarial_loss,
    l1_mean,
)
from codectk.losses.codec_loss import LOSSES
from codectk.losses.terms import add_quantizer_terms

DiscOutputs = list[list[Tensor]]


class FunCodecMelLoss(nn.Module):
    """FunCodec's multi-scale log-mel (and log-power) L1 + MSE loss (see module doc).

    Args:
        sample_rate (int): Hz, for the mel filterbank.
        windows (list[int] | None): window lengths s in samples, hop s / 4 (default
            [32, 64, 128, 256, 512, 1024]).
        n_fft (int): FFT size of every scale (>= max window).
        n_mels (int): mel bands.
        power_spec_loss (bool): add the log-power-spectrum terms, halving both.
        eps (float): floor before log10.

    Raises:
        ValueError: a window longer than ``n_fft`` or shorter than 4 samples.
    """

    def __init__(
        self,
        sample_rate: int,
        windows: list[int] | None = None,
        n_fft: int = 1024,
        n_mels: int = 64,
        power_spec_loss: bool = False,
        eps: float = 1e-5,
    ):
        super().__init__()
        windows = [2**p for p in range(5, 11)] if windows is None else list(windows)
        if not windows or min(windows) < 4 or max(windows) > n_fft:
            raise ValueError(f"windows {windows} must lie in [4, n_fft={n_fft}] samples")
        self.windows, self.n_fft, self.eps = windows, n_fft, eps
        self.power_spec_loss = power_spec_loss
        self.register_buffer("fbank", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)
        for s in windows:
            self.register_buffer(f"window{s}", torch.hann_window(s), persistent=False)

    def spectra(self, wav: Tensor, win: int) -> tuple[Tensor, Tensor]:
        """log10 mel power (B, n_mels, F) and log10 power spectrum (B, n_fft / 2 + 1, F)."""
        hop = win // 4
        pad = (self.n_fft - hop) // 2
        x = F.pad(wav, (pad, pad), mode="reflect").squeeze(1)  # (B, 1, T') -> (B, T')
        window = getattr(self, f"window{win}").to(x.dtype)
        spec = torch.stft(x, self.n_fft, hop, win, window, center=False, return_complex=True)
        power = spec.real**2 + spec.imag**2  # (B, n_fft / 2 + 1, F)
        mel = torch.matmul(self.fbank.to(x.dtype), power)  # (B, n_mels, F)
        return torch.log10(mel.clamp(min=self.eps)), torch.log10(power.clamp(min=self.eps))

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """The loss, averaged over scales.

        Args:
            ref (Tensor): reference waveform, shape (B, 1, T).
            est (Tensor): estimate, same shape.

        Returns:
            Tensor: scalar.

        Raises:
            ValueError: shapes differ or are not (B, 1, T).
        """
        if ref.shape != est.shape or ref.dim() != 3 or ref.shape[1] != 1:
            raise ValueError(
                f"ref {tuple(ref.shape)} and est {tuple(est.shape)} must both be (B, 1, T)"
            )
        total = ref.new_zeros(())
        for win in self.windows:
            m_ref, p_ref = self.spectra(ref, win)
            m_est, p_est = self.spectra(est, win)
            l1, l2 = F.l1_loss(m_ref, m_est), F.mse_loss(m_ref, m_est)
            if self.power_spec_loss:
                l1 = 0.5 * l1 + 0.5 * F.l1_loss(p_ref, p_est)
                l2 = 0.5 * l2 + 0.5 * F.mse_loss(p_ref, p_est)
            total = total + l1 + l2
        return total / len(self.windows)


def flat_feature_matching_loss(real_outs: DiscOutputs, fake_outs: DiscOutputs) -> Tensor:
    """Mean over all (sub-discriminator, feature map) pairs of mean |D_k^l(x) - D_k^l(x̂)|.

    The real features are detached; each inner list's last element (the logits) is left
    out.

    Args:
        real_outs (list[list[Tensor]]): discriminator outputs on real audio.
        fake_outs (list[list[Tensor]]): outputs on generated audio, same structure.

    Returns:
        Tensor: scalar.

    Raises:
        ValueError: mismatched structures or no feature map at all.
    """
    if len(real_outs) != len(fake_outs):
        raise ValueError(f"{len(real_outs)} real vs {len(fake_outs)} fake sub-discriminators")
    terms = []
    for r, f in zip(real_outs, fake_outs):
        if len(r) != len(f):
            raise ValueError(f"{len(r)} real vs {len(f)} fake tensors in a sub-discriminator")
        terms += [l1_mean(fr.detach(), ff) for fr, ff in zip(r[:-1], f[:-1])]
    if not terms:
        raise ValueError("no feature maps: every sub-discriminator returned only logits")
    return torch.stack(terms).mean()


@LOSSES.register("funcodec")
class FunCodecLoss(nn.Module):
    """FunCodec's generator and discriminator objectives (see module doc).

    Defaults are FunCodec's (``FreqCodec.__init__``): weights 1, 1, 1/9, 100/9, 1, mel
    windows 32..1024 with a 1024-point FFT and 64 bands, no power-spectrum term.

    Args:
        sample_rate (int): Hz.
        lambda_time (float): waveform L1 (FunCodec's ``recon_loss_weight``).
        lambda_mel (float): L_mel (``multi_spectral_recon_loss_weight``).
        lambda_adv (float): hinge generator loss (``adversarial_loss_weight``).
        lambda_feat (float): feature matching (``feat_match_loss_weight``).
        lambda_commit (float): commitment loss (FunCodec adds it with weight 1).
        lambda_codebook (float): the quantizer's codebook loss (0 for EMA codebooks).
        mel_windows (list[int] | None): window lengths in samples.
        mel_n_fft (int): FFT size of every mel scale.
        mel_n_mels (int): mel bands (``multi_spectral_n_mels``).
        power_spec_loss (bool): FunCodec's ``use_power_spec_loss``.

    Raises:
        ValueError: a negative weight or a bad mel configuration.
    """

    def __init__(
        self,
        sample_rate: int,
        lambda_time: float = 1.0,
        lambda_mel: float = 1.0,
        lambda_adv: float = 1 / 9,
        lambda_feat: float = 100 / 9,
        lambda_commit: float = 1.0,
        lambda_codebook: float = 1.0,
        mel_windows: list[int] | None = None,
        mel_n_fft: int = 1024,
        mel_n_mels: int = 64,
        power_spec_loss: bool = False,
    ):
        super().__init__()
        self.weights = {
            "time": float(lambda_time),
            "mel": float(lambda_mel),
            "adv": float(lambda_adv),
            "feat": float(lambda_feat),
            "commit": float(lambda_commit),
            "codebook": float(lambda_codebook),
        }
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        self.mel_loss = FunCodecMelLoss(
            sample_rate, mel_windows, mel_n_fft, mel_n_mels, power_spec_loss
        )

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
            fake_outs (list[list[Tensor]] | None): discriminator outputs on ``wav_hat``;
                None skips the adversarial and feature terms.
            real_outs (list[list[Tensor]] | None): outputs on ``wav``; None skips L_feat.
            commitment_loss (Tensor | None): scalar from the quantizer.
            codebook_loss (Tensor | None): scalar from the quantizer.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: the weighted total (with graph) and the
            unweighted, detached terms "time", "mel", "adv", "feat", "commit",
            "codebook" (those computed), "gen" (FunCodec's ``gen_loss``: the weighted
            time, mel, adv and feat terms) and "total".

        Raises:
            ValueError: ``wav`` and ``wav_hat`` differ in shape.
        """
        if wav.shape != wav_hat.shape:
            raise ValueError(f"wav {tuple(wav.shape)} and wav_hat {tuple(wav_hat.shape)} differ")
        w = self.weights
        terms: dict[str, Tensor] = {}
        if w["time"] > 0:
            terms["time"] = F.l1_loss(wav, wav_hat)
        if w["mel"] > 0:
            terms["mel"] = self.mel_loss(wav, wav_hat)
        if fake_outs is not None and w["adv"] > 0:
            terms["adv"] = generator_adversarial_loss(fake_outs, "hinge")
        if fake_outs is not None and real_outs is not None and w["feat"] > 0:
            terms["feat"] = flat_feature_matching_loss(real_outs, fake_outs)
        gen = wav_hat.new_zeros(())
        for name, value in terms.items():
            gen = gen + w[name] * value
        add_quantizer_terms(terms, w, commitment_loss, codebook_loss)
        total = gen
        for name in ("commit", "codebook"):
            if name in terms:
                total = total + w[name] * terms[name]
        parts = {name: value.detach() for name, value in terms.items()}
        parts["gen"] = gen.detach()
        parts["total"] = total.detach()
        return total, parts

    def discriminator(
        self, real_outs: DiscOutputs, fake_outs: DiscOutputs
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator objective L_D (hinge, averaged over sub-discriminators).

        Args:
            real_outs (list[list[Tensor]]): discriminator outputs on real audio.
            fake_outs (list[list[Tensor]]): outputs on the detached reconstruction.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: total, and detached "real", "fake", "total".
        """
        return discriminator_objective(real_outs, fake_outs, "hinge")
