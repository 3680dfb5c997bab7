"""EnCodec's training objective with the loss balancer (``loss: encodec``).

Défossez, Copet, Synnaeve, Adi, "High Fidelity Neural Audio Compression" (EnCodec), TMLR
2023, §3.4. Generator (eq. 4)::

    L_G = lambda_t l_t + lambda_f l_f + lambda_g l_g + lambda_feat l_feat + lambda_w l_w

* l_t: time-domain L1, mean |x - x̂|.
* l_f (eq. 2): frequency-domain loss over mel spectrograms S_i (64 bands, window 2^i,
  hop 2^i / 4, window-normalised STFT, i in e = {5, ..., 11}): the L1 plus alpha_i times
  the L2 (squared, as the authors' later implementation in AudioCraft) distance of S_i(x)
  and S_i(x̂), alpha_i = 1, averaged over scales (:class:`EnCodecFrequencyLoss`).
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
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codectk.features import MelSpectrogram
from codectk.losses.adversarial import (
    LOSS_TYPES,
    discriminator_objective,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codectk.losses.balancer import Balancer
from codectk.losses.codec_loss import LOSSES

DiscOutputs = list[list[Tensor]]
_BALANCED = ("time", "freq", "adv", "feat")


class EnCodecFrequencyLoss(nn.Module):
    """EnCodec's l_f (eq. 2): L1 + alpha * L2 over multi-scale mel spectrograms.

    ``(1 / |e|) sum_{i in e} [mean |S_i(x) - S_i(x̂)| + alpha_i mean (S_i(x) - S_i(x̂))^2]``
    with S_i a ``n_mels``-band magnitude mel spectrogram of window and FFT size 2^i, hop
    2^i / 4 (Hann window; divided by the window's L2 norm when ``normalized``). With
    ``log`` the spectrograms are log10(max(S, 1e-5)) instead (AudioCraft's variant).

    Args:
        sample_rate (int): Hz.
        scales (list[int] | None): exponents i (default [5, ..., 11]: windows 32..2048).
        n_mels (int): mel bands.
        alphas (list[float] | None): alpha_i per scale (default 1 each).
        normalized (bool): normalise the STFT by the window's L2 norm.
        log (bool): compare log10 mel spectrograms.

    Raises:
        ValueError: empty scales, scales below 2, or ``alphas`` of another length.
    """

    def __init__(
        self,
        sample_rate: int,
        scales: list[int] | None = None,
        n_mels: int = 64,
        alphas: list[float] | None = None,
        normalized: bool = True,
        log: bool = False,
    ):
        super().__init__()
        scales = list(range(5, 12)) if scales is None else scales
        alphas = [1.0] * len(scales) if alphas is None else alphas
        if not scales or min(scales) < 2 or len(alphas) != len(scales):
            raise ValueError(
                f"scales {scales} must be a non-empty list of ints >= 2, alphas {alphas} "
                "one per scale"
            )
        self.alphas = [float(a) for a in alphas]
        self.log = log
        self.mels = nn.ModuleList(
            MelSpectrogram(sample_rate, 2**i, 2**i // 4, n_mels=n_mels, log=log) for i in scales
        )
        self.gains = [
            float(torch.hann_window(2**i).pow(2).sum().rsqrt()) if normalized else 1.0
            for i in scales
        ]

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
            s_ref, s_est = mel(ref), mel(est)  # (B, n_mels, frames)
            if not self.log:
                s_ref, s_est = s_ref * gain, s_est * gain  # normalised STFT (linear in it)
            diff = s_ref - s_est
            total = total + diff.abs().mean() + alpha * diff.pow(2).mean()
        return total / len(self.mels)


@LOSSES.register("encodec")
class EnCodecLoss(nn.Module):
    """EnCodec's generator and discriminator objectives, balanced (see module doc).

    Args:
        sample_rate (int): Hz, for the mel filterbanks.
        lambda_time (float): lambda_t of the time L1.
        lambda_freq (float): lambda_f of :class:`EnCodecFrequencyLoss`.
        lambda_adv (float): lambda_g of the adversarial loss.
        lambda_feat (float): lambda_feat of the relative feature matching.
        lambda_commit (float): lambda_w of the commitment loss (never balanced).
        lambda_codebook (float): weight of the quantizer's codebook loss (never balanced;
            0-valued with EMA codebooks).
        balance (bool): use the balancer (False: a plain weighted sum, the paper's
            ablation).
        balancer_total_norm (float): reference norm R.
        balancer_ema_decay (float): beta of the gradient-norm EMA.
        balancer_per_batch_item (bool): per-example gradient norms.
        adversarial_loss_type (str): "hinge" (EnCodec) or "mse".
        relative_feature_matching (bool): divide by the real features' mean magnitude.
        freq_scales (list[int] | None): exponents of the mel windows (default 5..11).
        freq_n_mels (int): mel bands.
        freq_alphas (list[float] | None): L2 weights per scale (default 1).
        freq_normalized (bool): window-normalised STFT.
        freq_log (bool): log10 mel spectrograms instead of magnitudes.

    Raises:
        ValueError: negative or all-zero balanced weights, an unknown loss type, or a bad
            frequency-loss configuration.
    """

    def __init__(
        self,
        sample_rate: int,
        lambda_time: float = 0.1,
        lambda_freq: float = 1.0,
        lambda_adv: float = 3.0,
        lambda_feat: float = 3.0,
        lambda_commit: float = 1.0,
        lambda_codebook: float = 1.0,
        balance: bool = True,
        balancer_total_norm: float = 1.0,
        balancer_ema_decay: float = 0.999,
        balancer_per_batch_item: bool = True,
        adversarial_loss_type: str = "hinge",
        relative_feature_matching: bool = True,
        freq_scales: list[int] | None = None,
        freq_n_mels: int = 64,
        freq_alphas: list[float] | None = None,
        freq_normalized: bool = True,
        freq_log: bool = False,
    ):
        super().__init__()
        if adversarial_loss_type not in LOSS_TYPES:
            raise ValueError(
                f"adversarial_loss_type {adversarial_loss_type!r} not supported; "
                f"choose one of {list(LOSS_TYPES)}"
            )
        self.weights = {
            "time": float(lambda_time),
            "freq": float(lambda_freq),
            "adv": float(lambda_adv),
            "feat": float(lambda_feat),
            "commit": float(lambda_commit),
            "codebook": float(lambda_codebook),
        }
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        balanced = {k: self.weights[k] for k in _BALANCED if self.weights[k] > 0}
        if not balanced:
            raise ValueError(f"at least one of lambda_{list(_BALANCED)} must be > 0")
        self.balancer = (
            Balancer(balanced, balancer_total_norm, balancer_ema_decay, balancer_per_batch_item)
            if balance
            else None
        )
        self.adversarial_loss_type = adversarial_loss_type
        self.relative_feature_matching = relative_feature_matching
        self.freq_loss = EnCodecFrequencyLoss(
            sample_rate, freq_scales, freq_n_mels, freq_alphas, freq_normalized, freq_log
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
        """Generator objective L_G (eq. 4), balanced when gradients are being recorded.

        Args:
            wav (Tensor): reference x, shape (B, 1, T).
            wav_hat (Tensor): reconstruction x̂, shape (B, 1, T) (the balanced output).
            fake_outs (list[list[Tensor]] | None): discriminator outputs on ``wav_hat``
                (not detached); None skips l_g and l_feat.
            real_outs (list[list[Tensor]] | None): outputs on ``wav``; None skips l_feat.
            commitment_loss (Tensor | None): scalar from the quantizer.
            codebook_loss (Tensor | None): scalar from the quantizer.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: the total, whose gradient is the balanced one
            and whose value is the weighted sum; the unweighted, detached terms ("time",
            "freq", "adv", "feat", "commit", "codebook", those computed) and "total".

        Raises:
            ValueError: ``wav`` and ``wav_hat`` differ in shape.
        """
        if wav.shape != wav_hat.shape:
            raise ValueError(f"wav {tuple(wav.shape)} and wav_hat {tuple(wav_hat.shape)} differ")
        w = self.weights
        balanced: dict[str, Tensor] = {}
        if w["time"] > 0:
            balanced["time"] = (wav - wav_hat).abs().mean()
        if w["freq"] > 0:
            balanced["freq"] = self.freq_loss(wav, wav_hat)
        if fake_outs is not None and w["adv"] > 0:
            balanced["adv"] = generator_adversarial_loss(fake_outs, self.adversarial_loss_type)
        if fake_outs is not None and real_outs is not None and w["feat"] > 0:
            balanced["feat"] = feature_matching_loss(
                real_outs, fake_outs, relative=self.relative_feature_matching
            )
        other: dict[str, Tensor] = {}
        if commitment_loss is not None and w["commit"] > 0:
            other["commit"] = commitment_loss
        if codebook_loss is not None and w["codebook"] > 0:
            other["codebook"] = codebook_loss
        total = sum((w[k] * v for k, v in balanced.items()), wav_hat.new_zeros(()))
        if (
            self.balancer is not None
            and balanced
            and torch.is_grad_enabled()
            and wav_hat.requires_grad
        ):
            # Gradient: the balanced G through x̂; value: the plain weighted sum (comparable
            # with validation, which runs without gradients).
            surrogate = self.balancer.surrogate(balanced, wav_hat)
            total = surrogate - surrogate.detach() + total.detach()
        for name, value in other.items():
            total = total + w[name] * value
        parts = {name: value.detach() for name, value in {**balanced, **other}.items()}
        parts["total"] = total.detach()
        return total, parts

    def discriminator(
        self, real_outs: DiscOutputs, fake_outs: DiscOutputs
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator objective L_D (hinge, eq. 3).

        Args:
            real_outs (list[list[Tensor]]): discriminator outputs on real audio.
            fake_outs (list[list[Tensor]]): outputs on the detached reconstruction.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: total, and detached "real", "fake", "total".
        """
        return discriminator_objective(real_outs, fake_outs, self.adversarial_loss_type)
