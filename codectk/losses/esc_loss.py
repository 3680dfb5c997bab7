"""ESC's training objective (``loss: esc``).

Gu and Diao, "ESC: Efficient Speech Coding with Cross-Scale Residual Vector Quantized
Transformers", EMNLP 2024 (arXiv 2404.19441), §4.1, and the authors'
``scripts/trainer_no_adv.py`` / ``trainer_adv.py`` / ``esc/modules/loss/*.py``::

    L_G = 0.25 L_mel + 1 L_stft + 0.25 L_commit + 1 L_codebook  [+ L_adv + 2 L_feat]

* L_mel: summed over windows s in [32, 64, ..., 2048] (hop s / 4, Hann, centred) with
  [5, 10, ..., 320] mel bands on the HTK scale without area normalisation (torchaudio's
  ``MelSpectrogram`` defaults, magnitudes): mean |S - Ŝ| + mean |log10 max(S, 1e-5)^2 -
  log10 max(Ŝ, 1e-5)^2|.
* L_stft: the power-law compressed complex-STFT MSE; it needs the model's predicted
  spectrum, so :class:`~codectk.models.esc.ESC` computes it and returns it in
  ``CodecOutput.losses`` (weight ``stft_loss_weight`` there), added by the trainer.
* L_commit, L_codebook: the cross-scale quantizer's losses, summed over streams.
* Adversarial variant (``discriminator: dac``, the authors' MPD + multi-band MRD): DAC's
  least-squares GAN and L1 feature matching (:class:`~codectk.losses.dac_loss.DACLoss`),
  summed over sub-discriminators, weights ``lambda_adv`` and ``lambda_feat``.
"""

from __future__ import annotations

from codectk.features import mel_filterbank
from codectk.losses.codec_loss import LOSSES
from codectk.losses.dac_loss import DACLoss


@LOSSES.register("esc")
class ESCLoss(DACLoss):
    """ESC's generator and discriminator objectives (see module doc).

    Args:
        sample_rate (int): Hz, for the mel filterbanks.
        lambda_mel (float): weight of the summed multi-scale mel loss.
        lambda_adv (float): weight of the summed LSGAN generator loss.
        lambda_feat (float): weight of the summed feature-matching loss.
        lambda_commit (float): weight of the commitment loss.
        lambda_codebook (float): weight of the codebook loss.
        mel_windows (list[int] | None): window lengths (default [32, ..., 2048]).
        mel_n_mels (list[int] | None): mel bands per window (default [5, ..., 320]).
        mel_eps (float): floor on mel magnitudes before the log.

    Raises:
        ValueError: a negative weight or a bad mel configuration.
    """

    def __init__(
        self,
        sample_rate: int,
        lambda_mel: float = 0.25,
        lambda_adv: float = 1.0,
        lambda_feat: float = 2.0,
        lambda_commit: float = 0.25,
        lambda_codebook: float = 1.0,
        mel_windows: list[int] | None = None,
        mel_n_mels: list[int] | None = None,
        mel_eps: float = 1e-5,
    ):
        # log10(S^2) = 2 log10 S: log weight 2; linear magnitude weight 1 (see module doc).
        super().__init__(
            sample_rate,
            lambda_mel=lambda_mel,
            lambda_adv=lambda_adv,
            lambda_feat=lambda_feat,
            lambda_commit=lambda_commit,
            lambda_codebook=lambda_codebook,
            mel_windows=mel_windows,
            mel_n_mels=mel_n_mels,
            mel_log_weight=2.0,
            mel_mag_weight=1.0,
            mel_eps=mel_eps,
        )
        for mel in self.mel_loss.mels:  # torchaudio's defaults: HTK scale, no normalisation
            fbank = mel_filterbank(sample_rate, mel.n_fft, mel.fbank.shape[0], htk=True, norm=None)
            mel.fbank = fbank.to(mel.fbank.dtype)


__all__ = ["ESCLoss"]
