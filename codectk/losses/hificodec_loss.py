"""HiFi-Codec's training objective (``loss: hificodec``), as AcademiCodec trains it.

Yang et al., "HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio
Codec", arXiv 2305.02765, 2023; written from AcademiCodec's
``academicodec/models/hificodec/train.py:219-287`` with ``models.py:330-361``
(HiFi-GAN's ``feature_loss`` / ``generator_loss`` / ``discriminator_loss``) and
``meldataset.py:47-90`` (``mel_spectrogram``)::

    L_G = lambda_adv sum_k mean (1 - D_k(x̂))^2 + lambda_feat sum_k sum_l mean |D_k^l(x) - D_k^l(x̂)|
          + lambda_mel sum_r w_r L1(S_r(x), S_r(x̂))
          + lambda_codebook L_codebook + lambda_commit L_commit
    L_D = sum_k [ mean (1 - D_k(x))^2 + mean D_k(x̂)^2 ]

with AcademiCodec's lambda_adv 1, lambda_feat 2 (``feature_loss`` returns twice the sum),
lambda_mel 1 with resolution weights w = (45, 1, 1), lambda_codebook 10 x 1 and
lambda_commit 10 x 0.25 (``loss_q * 10``, ``codebook_loss_lambda`` 1,
``commitment_loss_lambda`` 0.25). Sums run over every sub-discriminator k (MPD, MSD and
MS-STFT: 13) and every feature map l; HiFi-GAN's MPD and MSD count their logits as a
feature map too, which :class:`~codectk.discriminators.combined.CombinedDiscriminator`'s
``logits_as_features`` reproduces.

S_r is HiFi-GAN's log-mel: the waveform reflect-padded by (n_fft - hop) / 2 on both sides,
a Hann-windowed (``win`` samples) ``n_fft``-point STFT without centring, magnitude
sqrt(re^2 + im^2 + 1e-9), Slaney mel filterbank (librosa's, ``n_mels`` bands from
``fmin`` to ``fmax``), ln max(., 1e-5). AcademiCodec's resolutions are
(n_fft, hop, win) = (1024, hop_size, win_size) of its config ((1024, 200, 800) at 16 kHz,
(1024, 240, 1024) at 24 kHz), (512, 120, 512) and (256, 60, 256), 80 bands, 0 Hz to
fs / 2 (``fmax_for_loss: null``); it also computes a (128, 30, 128) mel that no loss uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.features import mel_filterbank
from codectk.losses.objective import LOSSES, MelGANObjective
from codectk.losses.spectral import check_waveform_pair


class HiFiGANMelLoss(nn.Module):
    """Weighted L1 distances of HiFi-GAN log-mel spectrograms at several resolutions.

    Args:
        sample_rate (int): Hz.
        resolutions (list[list[int]] | None): (n_fft, hop, win) triples in samples
            (default AcademiCodec's 16 kHz ones: [[1024, 200, 800], [512, 120, 512],
            [256, 60, 256]]).
        weights (list[float] | None): one per resolution (default [45, 1, 1]).
        n_mels (int): mel bands.
        fmin (float): lowest band edge in Hz.
        fmax (float | None): highest band edge in Hz (None: fs / 2).

    Raises:
        ValueError: a resolution that is not three positive ints with hop, win <= n_fft,
            or weights of another length.
    """

    def __init__(
        self,
        sample_rate: int,
        resolutions: list[list[int]] | None = None,
        weights: list[float] | None = None,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = None,
    ):
        super().__init__()
        resolutions = (
            [[1024, 200, 800], [512, 120, 512], [256, 60, 256]]
            if resolutions is None
            else [list(r) for r in resolutions]
        )
        weights = [45.0, 1.0, 1.0] if weights is None else list(weights)
        for r in resolutions:
            if len(r) != 3 or min(r) < 1 or max(r[1], r[2]) > r[0]:
                raise ValueError(f"resolution {r} must be [n_fft, hop, win] with hop, win <= n_fft")
        if not resolutions or len(weights) != len(resolutions):
            raise ValueError(f"weights {weights} need one value per resolution {resolutions}")
        self.resolutions, self.weights = resolutions, weights
        for i, (n_fft, _, win) in enumerate(resolutions):
            fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
            self.register_buffer(f"fbank{i}", fb, persistent=False)
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def log_mel(self, wav: Tensor, i: int) -> Tensor:
        """ln mel magnitude (B, n_mels, F) of waveform (B, 1, T) at resolution ``i``."""
        n_fft, hop, win = self.resolutions[i]
        pad = (n_fft - hop) // 2
        x = F.pad(wav, (pad, pad), mode="reflect").squeeze(1)  # (B, 1, T') -> (B, T')
        window = getattr(self, f"window{i}").to(x.dtype)
        spec = torch.stft(x, n_fft, hop, win, window, center=False, return_complex=True)
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)  # (B, n_fft / 2 + 1, F)
        mel = torch.matmul(getattr(self, f"fbank{i}").to(x.dtype), mag)
        return torch.log(mel.clamp(min=1e-5))

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """sum_r w_r mean |S_r(ref) - S_r(est)| for waveforms (B, 1, T) of equal shape.

        Raises:
            ValueError: shapes differ or are not (B, 1, T).
        """
        check_waveform_pair(ref, est)
        total = ref.new_zeros(())
        for i, w in enumerate(self.weights):
            total = total + w * F.l1_loss(self.log_mel(ref, i), self.log_mel(est, i))
        return total


@LOSSES.register("hificodec")
class HiFiCodecLoss(MelGANObjective):
    """AcademiCodec's HiFi-Codec generator and discriminator objectives (module doc).

    Terms (``weights``, in AcademiCodec's order of the sum, ``train.py:262-266``): "mel"
    1 (the weighted multi-resolution mel L1), "adv" 1 (summed least squares), "feat" 2
    (summed feature matching), "codebook" 10, "commit" 2.5. ``loss_conf.mel`` holds
    :class:`HiFiGANMelLoss`'s arguments (arguments and errors as
    :class:`~codectk.losses.objective.MelGANObjective`).
    """

    WEIGHTS = dict(mel=1.0, adv=1.0, feat=2.0, codebook=10.0, commit=2.5)
    ADVERSARIAL = dict(
        adversarial_loss_type="mse", feature_matching="summed", sum_over_discriminators=True
    )
    MEL_LOSS = HiFiGANMelLoss
