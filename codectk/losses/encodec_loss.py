"""EnCodec's training objective with the loss balancer (``loss: encodec``).

Défossez, Copet, Synnaeve, Adi, "High Fidelity Neural Audio Compression" (EnCodec), TMLR
2023, §3.4. Generator (eq. 4)::

    L_G = lambda_t l_t + lambda_f l_f + lambda_g l_g + lambda_feat l_feat + lambda_w l_w

* l_t: time-domain L1, mean |x - x̂|.
* l_f (eq. 2): frequency-domain loss over mel spectrograms S_i (64 bands, window 2^i,
  hop 2^i / 4, window-normalised STFT, i in e = {5, ..., 11}): the L1 plus alpha_i times
  the L2 (squared) distance of S_i(x) and S_i(x̂), alpha_i = 1, averaged over scales
  (:class:`EnCodecFrequencyLoss`).
* l_g (eq. 3): hinge generator loss, (1/K) sum_k max(0, 1 - D_k(x̂)).
* l_feat: relative feature matching, (1/(KL)) sum_{k,l} ||D_k^l(x) - D_k^l(x̂)||_1 /
  mean(||D_k^l(x)||_1).
* l_w: the commitment loss of the residual quantiser.

Weights lambda_t = 0.1, lambda_f = 1, lambda_g = 3, lambda_feat = 3, lambda_w = 1. With
``balance`` (the paper's setting) l_t, l_f, l_g and l_feat go through the loss balancer
(:mod:`codectk.losses.balancer`): their gradients w.r.t. x̂ are rescaled so that loss i
makes up lambda_i / sum_j lambda_j of the gradient; l_w (and the codebook loss, 0 with
EMA codebooks) is added unbalanced with its weight. The returned total's gradient is
exactly that, so the trainer just calls ``total.backward()``; its value is always the
plain weighted sum sum_i lambda_i l_i (also what validation, run without gradients,
reports), not the balancer's effective loss.

Discriminator (eq. 3): hinge, (1/K) sum_k max(0, 1 - D_k(x)) + max(0, 1 + D_k(x̂)).

The class defaults are the paper's. The authors' training code (audiocraft 1.3.0, the
compression solver with ``config/solver/compression/default.yaml``) differs, and the
EnCodec configs follow it (``test/parity/test_encodec_losses.py`` checks each term):
weights adv 4, feat 4, l1 0.1, msspec 2; the generator loss -mean D_k(x̂)
(``adversarial_loss_type: hinge_linear``); feature matching not relative; l_f over
windows 2^6..2^10 with power HTK mels from 64 Hz, L1 on the mels plus MSE on their
log10, divided by 10 (the ``loss_conf.freq`` section).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.features import MelSpectrogram
from codectk.losses.balancer import Balancer
from codectk.losses.objective import LOSSES, QUANTIZER_TERMS, GANObjective, weighted_total

# the order of the balanced losses is the order of audiocraft's compression solver (adv,
# feat, then l1 and msspec: solvers/compression.py:41-50), which fixes the order in which
# the balancer sums them (floating-point sums depend on it)
_BALANCED = ("adv", "feat", "time", "freq")


FRAMINGS = ("center", "full")
REDUCTIONS = ("scales", "weights")
MEL_SCALES = ("slaney", "htk")


def full_frames(wav: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """Pad so that frames of ``n_fft`` every ``hop_length`` cover every sample in full.

    Reflect-pads (n_fft - hop_length) // 2 samples on both sides, then zeros on the right
    up to the end of the last frame: ceil((T + 2p - n_fft) / hop) + 1 frames, about
    T / hop_length (audiocraft's ``MelSpectrogramWrapper``, ``losses/specloss.py:48-58``).

    Args:
        wav (Tensor): (B, 1, T), T > (n_fft - hop_length) // 2.
        n_fft (int): frame length in samples.
        hop_length (int): frame shift in samples.

    Returns:
        Tensor: (B, 1, T') to frame with ``center=False``.
    """
    p = (n_fft - hop_length) // 2
    wav = F.pad(wav, (p, p), mode="reflect")
    frames = max(math.ceil((wav.shape[-1] - n_fft) / hop_length), 0) + 1
    return F.pad(wav, (0, (frames - 1) * hop_length + n_fft - wav.shape[-1]))


class EnCodecFrequencyLoss(nn.Module):
    """EnCodec's l_f (eq. 2): L1 + alpha * L2 over multi-scale mel spectrograms.

    ``(1 / Z) sum_{i in e} [mean |S_i(x) - S_i(x̂)| + alpha_i mean (L_i(x) - L_i(x̂))^2]``
    with S_i an ``n_mels``-band mel spectrogram (|STFT|^``power``) of window and FFT size
    2^i, hop 2^i / 4 (Hann window; STFT divided by the window's L2 norm when
    ``normalized``), L_i = S_i (the paper) or log10(``log_floor`` + S_i), and Z the number
    of scales (the paper) or sum_i (1 + alpha_i) (``reduction="weights"``).

    The paper's defaults (e = {5, ..., 11}, magnitudes, alpha_i = 1, 1 / |e|) are the
    class defaults. The authors' training code (audiocraft 1.3.0 ``msspec`` loss,
    ``losses/specloss.py:96-149`` with ``config/solver/compression/default.yaml:52-61``)
    differs: ``scales=[6, ..., 10], f_min=64, power=2, mel_scale="htk", log_floor=1e-5,
    framing="full", reduction="weights"`` reproduces it (power mels, the L2 on log10 mels,
    divided by 10). With ``log`` both terms compare log10(max(S, 1e-5)) instead.

    Args:
        sample_rate (int): Hz.
        scales (list[int] | None): exponents i (default [5, ..., 11]: windows 32..2048).
        n_mels (int): mel bands.
        alphas (list[float] | None): alpha_i per scale (default 1 each).
        normalized (bool): normalise the STFT by the window's L2 norm.
        log (bool): compare log10(max(S, 1e-5)) in both terms.
        f_min (float): lowest mel band edge in Hz.
        power (float): 1 for magnitude, 2 for power spectrograms.
        mel_scale (str): "slaney" (Slaney's scale, area-normalised bands, librosa's
            default) or "htk" (HTK scale, unit-peak bands, torchaudio's default).
        log_floor (float | None): when set, the L2 term compares log10(log_floor + S).
        framing (str): "center" (reflect-pad n / 2 on both sides, librosa) or "full"
            (:func:`full_frames`).
        reduction (str): divide the sum over scales by their number ("scales") or by
            sum_i (1 + alpha_i) ("weights").

    Raises:
        ValueError: empty scales, scales below 2, ``alphas`` of another length, ``log``
            with ``log_floor``, or an unknown ``mel_scale``, ``framing`` or ``reduction``.
    """

    def __init__(
        self,
        sample_rate: int,
        scales: list[int] | None = None,
        n_mels: int = 64,
        alphas: list[float] | None = None,
        normalized: bool = True,
        log: bool = False,
        f_min: float = 0.0,
        power: float = 1.0,
        mel_scale: str = "slaney",
        log_floor: float | None = None,
        framing: str = "center",
        reduction: str = "scales",
    ):
        super().__init__()
        scales = list(range(5, 12)) if scales is None else scales
        alphas = [1.0] * len(scales) if alphas is None else alphas
        if not scales or min(scales) < 2 or len(alphas) != len(scales):
            raise ValueError(
                f"scales {scales} must be a non-empty list of ints >= 2, alphas {alphas} "
                "one per scale"
            )
        for name, value, allowed in (
            ("mel_scale", mel_scale, MEL_SCALES),
            ("framing", framing, FRAMINGS),
            ("reduction", reduction, REDUCTIONS),
        ):
            check_choice(name, value, allowed)
        if log and log_floor is not None:
            raise ValueError(f"log=True and log_floor={log_floor} exclude each other")
        self.alphas = [float(a) for a in alphas]
        self.log, self.log_floor, self.framing, self.power = log, log_floor, framing, power
        self.n_ffts = [2**i for i in scales]
        self.mels = nn.ModuleList(
            MelSpectrogram(
                sample_rate,
                n,
                n // 4,
                n_mels=n_mels,
                f_min=f_min,
                power=power,
                log=log,
                center=framing == "center",
                htk=mel_scale == "htk",
                norm="slaney" if mel_scale == "slaney" else None,
            )
            for n in self.n_ffts
        )
        self.gains = [
            float(torch.hann_window(n).pow(2).sum().rsqrt()) ** power if normalized else 1.0
            for n in self.n_ffts
        ]
        self.divisor = len(scales) if reduction == "scales" else sum(1.0 + a for a in self.alphas)

    def _spectrogram(self, mel: MelSpectrogram, wav: Tensor, gain: float) -> Tensor:
        if self.framing == "full":
            wav = full_frames(wav, mel.n_fft, mel.hop_length)
        s = mel(wav)  # (B, n_mels, frames)
        return s if self.log else s * gain  # normalised STFT: S scales with gain^power

    def forward(self, ref: Tensor, est: Tensor) -> Tensor:
        """Loss between a reference and an estimate.

        Args:
            ref (Tensor): x, shape (B, 1, T).
            est (Tensor): x̂, same shape.

        Returns:
            Tensor: scalar (0 when ``est`` equals ``ref``).
        """
        total = ref.new_zeros(())
        for mel, alpha, gain in zip(self.mels, self.alphas, self.gains):
            s_ref, s_est = self._spectrogram(mel, ref, gain), self._spectrogram(mel, est, gain)
            l1 = (s_ref - s_est).abs().mean()
            if self.log_floor is not None:
                s_ref = torch.log10(self.log_floor + s_ref)
                s_est = torch.log10(self.log_floor + s_est)
            total = total + l1 + alpha * (s_ref - s_est).pow(2).mean()
        return total / self.divisor


@LOSSES.register("encodec")
class EnCodecLoss(GANObjective):
    """EnCodec's generator and discriminator objectives, balanced (see module doc).

    Terms (``weights``, the paper's defaults): "adv" 3 (lambda_g), "feat" 3
    (lambda_feat), "time" 0.1 (lambda_t, waveform L1), "freq" 1 (lambda_f,
    :class:`EnCodecFrequencyLoss`), "commit" 1 (lambda_w, never balanced), "codebook" 1
    (never balanced; 0-valued with EMA codebooks).

    Args:
        sample_rate, weights: as every family's (:class:`~codectk.losses.objective.GANObjective`).
        balance (bool): use the balancer (False: a plain weighted sum, the paper's
            ablation).
        balancer_total_norm (float): reference norm R.
        balancer_ema_decay (float): beta of the gradient-norm EMA.
        balancer_per_batch_item (bool): per-example gradient norms.
        adversarial_loss_type (str): "hinge" (the paper's eq. 3), "hinge_linear" (the
            authors' code: generator loss -mean D_k(x̂)) or "mse".
        relative_feature_matching (bool): divide by the real features' mean magnitude
            (the paper; the authors' code does not).
        freq (dict | None): :class:`EnCodecFrequencyLoss`'s arguments.

    Raises:
        ConfigError (a ValueError): as every family's (unknown term or key, negative weight).
        ValueError: all balanced weights 0, an unknown loss type, or a bad
            frequency-loss configuration.
    """

    WEIGHTS = dict(adv=3.0, feat=3.0, time=0.1, freq=1.0, commit=1.0, codebook=1.0)

    def __init__(
        self,
        sample_rate: int,
        weights: dict[str, float] | None = None,
        balance: bool = True,
        balancer_total_norm: float = 1.0,
        balancer_ema_decay: float = 0.999,
        balancer_per_batch_item: bool = True,
        adversarial_loss_type: str = "hinge",
        relative_feature_matching: bool = True,
        freq: dict[str, Any] | None = None,
    ):
        # WEIGHTS: the balanced terms first, in _BALANCED's order
        feature_matching = "relative" if relative_feature_matching else "mean"
        super().__init__(weights, adversarial_loss_type, feature_matching)
        balanced = {k: self.weights[k] for k in _BALANCED if self.weights[k] > 0}
        if not balanced:
            raise ValueError(f"at least one of the weights of {list(_BALANCED)} must be > 0")
        self.balancer = (
            Balancer(balanced, balancer_total_norm, balancer_ema_decay, balancer_per_batch_item)
            if balance
            else None
        )
        self.spectral("freq", EnCodecFrequencyLoss, freq, sample_rate=sample_rate)

    def combine(self, terms: dict[str, Tensor], wav_hat: Tensor) -> tuple[Tensor, dict]:
        """The total of eq. 4: when gradients are recorded its gradient is the balanced
        one of the adversarial and reconstruction terms through x̂, its value always the
        plain weighted sum (comparable with validation, which runs without gradients);
        the quantizer's terms are added unbalanced."""
        balanced = {k: v for k, v in terms.items() if k not in QUANTIZER_TERMS}
        total, parts = weighted_total(balanced, self.weights, wav_hat)
        del parts["total"]
        if (
            self.balancer is not None
            and balanced
            and torch.is_grad_enabled()
            and wav_hat.requires_grad
        ):
            surrogate = self.balancer.surrogate(balanced, wav_hat)
            total = surrogate - surrogate.detach() + total.detach()
        for name in QUANTIZER_TERMS:
            if name in terms:
                total = total + self.weights[name] * terms[name]
                parts[name] = terms[name].detach()
        parts["total"] = total.detach()
        return total, parts
