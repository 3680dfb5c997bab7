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
from codectk.losses.objective import LOSSES, QUANTIZER_TERMS, MelGANObjective, weighted_total
from codectk.losses.spectral import check_waveform_pair


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
        check_waveform_pair(ref, est)
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


@LOSSES.register("funcodec")
class FunCodecLoss(MelGANObjective):
    """FunCodec's generator and discriminator objectives (see module doc).

    Defaults are FunCodec's (``FreqCodec.__init__``). Terms (``weights``): "time" 1
    (waveform L1, ``recon_loss_weight``), "mel" 1 (``multi_spectral_recon_loss_weight``),
    "adv" 1/9 (hinge, ``adversarial_loss_weight``), "feat" 100/9
    (``feat_match_loss_weight``), "commit" 1 (FunCodec adds it with weight 1), "codebook"
    1 (0 for EMA codebooks). ``loss_conf.mel`` holds :class:`FunCodecMelLoss`'s arguments
    (default windows 32..1024 with a 1024-point FFT and 64 bands, no power-spectrum term;
    arguments and errors as :class:`~codectk.losses.objective.MelGANObjective`).
    """

    WEIGHTS = dict(time=1.0, mel=1.0, adv=1 / 9, feat=100 / 9, commit=1.0, codebook=1.0)
    ADVERSARIAL = dict(adversarial_loss_type="hinge", feature_matching="flat")
    MEL_LOSS = FunCodecMelLoss

    def combine(self, terms: dict[str, Tensor], wav_hat: Tensor) -> tuple[Tensor, dict]:
        """The weighted total; the parts also hold "gen", FunCodec's ``gen_loss`` (the
        weighted sum without the quantizer's terms, the trainer's discriminator gate)."""
        total, parts = weighted_total(terms, self.weights, wav_hat)
        gen = wav_hat.new_zeros(())
        for name, value in terms.items():
            if name not in QUANTIZER_TERMS:
                gen = gen + self.weights[name] * value.detach()
        return total, {**parts, "gen": gen}
