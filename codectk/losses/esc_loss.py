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
  summed over sub-discriminators, weights ``adv`` and ``feat``.
"""

from __future__ import annotations

from codectk.losses.codec_loss import LOSSES
from codectk.losses.dac_loss import DACLoss


@LOSSES.register("esc")
class ESCLoss(DACLoss):
    """ESC's generator and discriminator objectives (see module doc): DAC's, with ESC's
    default weights ("mel" 0.25, "adv" 1, "feat" 2, "commit" 0.25, "codebook" 1) and mel
    loss (log10(S^2) = 2 log10 S: log weight 2; linear magnitude weight 1; HTK mels). Its
    ``loss_conf.mel`` sets the other arguments of
    :func:`~codectk.losses.dac_loss.dac_mel_loss` (arguments and errors as
    :class:`~codectk.losses.dac_loss.DACLoss`).
    """

    WEIGHTS = dict(mel=0.25, adv=1.0, feat=2.0, commit=0.25, codebook=1.0)
    MEL = dict(log_weight=2.0, mag_weight=1.0, mel_scale="htk")


__all__ = ["ESCLoss"]
