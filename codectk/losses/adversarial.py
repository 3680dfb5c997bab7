"""Adversarial and feature-matching losses over multi-discriminator outputs.

Inputs are what every ``codectk.discriminators`` module returns: ``list[list[Tensor]]``,
one inner list per sub-discriminator k, holding its feature maps D_k^(l) (l = 1..L_k)
followed by its logits D_k as the last element.

References:
    Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", TASLP 2021, §3.4,
    eqs. 1-3 (hinge losses, feature matching).
    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, and Kong et
    al., "HiFi-GAN", NeurIPS 2020, eqs. 1-3 (least-squares losses).
    Défossez et al., "High Fidelity Neural Audio Compression" (EnCodec), TMLR 2023, §3.4
    (relative feature matching).
    Lim and Ye, "Geometric GAN", 2017, and Zhang et al., "Self-Attention GANs", ICML 2019
    (hinge discriminator loss with the linear generator loss -D(G(x)), ``hinge_linear``;
    what EnCodec's training code, audiocraft 1.3.0, calls "hinge":
    ``audiocraft/adversarial/losses.py:175-192``).

Precision: under mixed precision the discriminator's outputs arrive in the compute dtype
(bf16/fp16) and are not copied to float32: the logits (small) are upcast, and each
feature-map term is reduced with a float32 accumulator and a float32 result
(:func:`l1_mean`: on CUDA the upcast happens inside the reduction kernel, no copy). The
elementwise |a - b| of two bf16 maps is then rounded to bf16 (relative error <= 2^-9 per
element); float32 inputs are computed exactly as before.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from codectk.errors import check_choice

LOSS_TYPES = ("hinge", "mse", "hinge_linear")

DiscOutputs = list[list[Tensor]]


def l1_mean(a: Tensor, b: Tensor) -> Tensor:
    """mean |a - b| as a float32 scalar (float64 for float64 inputs), accumulated in
    float32 whatever the inputs' dtype, without a float32 copy of either input on CUDA.

    Args:
        a, b (Tensor): same shape, any floating dtype.

    Returns:
        Tensor: 0-dim.
    """
    return (a - b).abs().mean(dtype=_acc_dtype(a))


def abs_mean(a: Tensor) -> Tensor:
    """mean |a| in float32 (or float64), as :func:`l1_mean`."""
    return a.abs().mean(dtype=_acc_dtype(a))


def _acc_dtype(t: Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _logits(t: Tensor) -> Tensor:
    """Logits in float32 (or float64): small tensors, upcast before the nonlinearity."""
    return t.to(_acc_dtype(t))


def _check(loss_type: str, *outs: DiscOutputs) -> None:
    check_choice("loss_type", loss_type, LOSS_TYPES)
    for o in outs:
        if not o or any(not sub for sub in o):
            raise ValueError("discriminator outputs must be a non-empty list of non-empty lists")
    if len(outs) == 2 and len(outs[0]) != len(outs[1]):
        raise ValueError(f"{len(outs[0])} real vs {len(outs[1])} fake sub-discriminator outputs")


def discriminator_loss_terms(
    real_outs: DiscOutputs, fake_outs: DiscOutputs, loss_type: str = "hinge"
) -> tuple[Tensor, Tensor]:
    """Real and fake halves of the discriminator loss, averaged over sub-discriminators.

    hinge and hinge_linear (SoundStream eq. 1): real = (1/K) sum_k mean_t relu(1 - D_k(x)),
    fake = (1/K) sum_k mean_t relu(1 + D_k(G(x))).
    mse (LSGAN, HiFi-GAN eq. 1): real = (1/K) sum_k mean (1 - D_k(x))^2,
    fake = (1/K) sum_k mean D_k(G(x))^2.

    Args:
        real_outs (list[list[Tensor]]): discriminator outputs on real audio x.
        fake_outs (list[list[Tensor]]): outputs on generated audio G(x) (computed from a
            detached waveform when training the discriminator).
        loss_type (str): "hinge", "hinge_linear" or "mse".

    Returns:
        tuple[Tensor, Tensor]: scalars (real term, fake term).

    Raises:
        ValueError: unknown ``loss_type`` or mismatched/empty outputs.
    """
    _check(loss_type, real_outs, fake_outs)
    real, fake = [], []
    for r, f in zip(real_outs, fake_outs):
        d_real, d_fake = _logits(r[-1]), _logits(f[-1])
        if loss_type in ("hinge", "hinge_linear"):
            real.append(F.relu(1 - d_real).mean())
            fake.append(F.relu(1 + d_fake).mean())
        else:
            real.append((1 - d_real).pow(2).mean())
            fake.append(d_fake.pow(2).mean())
    return torch.stack(real).mean(), torch.stack(fake).mean()


def discriminator_loss(
    real_outs: DiscOutputs, fake_outs: DiscOutputs, loss_type: str = "hinge"
) -> Tensor:
    """Discriminator loss L_D (SoundStream eq. 1 for hinge; LSGAN for mse).

    The sum of the two terms of :func:`discriminator_loss_terms` (same arguments).

    Returns:
        Tensor: scalar.
    """
    real, fake = discriminator_loss_terms(real_outs, fake_outs, loss_type)
    return real + fake


def generator_adversarial_loss(fake_outs: DiscOutputs, loss_type: str = "hinge") -> Tensor:
    """Generator adversarial loss L_G^adv, averaged over sub-discriminators.

    hinge (SoundStream eq. 2): (1/K) sum_k mean_t relu(1 - D_k(G(x))).
    hinge_linear (Lim and Ye 2017; EnCodec's code): (1/K) sum_k -mean_t D_k(G(x)), which
    keeps pushing logits up past 1.
    mse (LSGAN, HiFi-GAN eq. 2): (1/K) sum_k mean (1 - D_k(G(x)))^2.

    Args:
        fake_outs (list[list[Tensor]]): discriminator outputs on generated audio (not
            detached, so gradients reach the generator).
        loss_type (str): "hinge", "hinge_linear" or "mse".

    Returns:
        Tensor: scalar.

    Raises:
        ValueError: unknown ``loss_type`` or empty outputs.
    """
    _check(loss_type, fake_outs)
    logits = [_logits(f[-1]) for f in fake_outs]
    if loss_type == "hinge":
        losses = [F.relu(1 - d).mean() for d in logits]
    elif loss_type == "hinge_linear":
        losses = [-d.mean() for d in logits]
    else:
        losses = [(1 - d).pow(2).mean() for d in logits]
    return torch.stack(losses).mean()


def feature_matching_loss(
    real_outs: DiscOutputs, fake_outs: DiscOutputs, relative: bool = False
) -> Tensor:
    """Feature-matching loss L_G^feat (SoundStream eq. 3).

    ``(1/K) sum_k (1/L_k) sum_l mean |D_k^(l)(x) - D_k^(l)(G(x))|`` over the feature maps
    only (the logits, last in each list, are excluded); real features are detached. With
    ``relative`` each term is divided by ``mean |D_k^(l)(x)|`` (EnCodec §3.4, ℓ_feat).

    Args:
        real_outs (list[list[Tensor]]): discriminator outputs on real audio.
        fake_outs (list[list[Tensor]]): outputs on generated audio, same structure.
        relative (bool): EnCodec's normalisation by the real feature magnitude.

    Returns:
        Tensor: scalar (0 when the features are equal).

    Raises:
        ValueError: mismatched structures or a sub-discriminator without feature maps.
    """
    _check("hinge", real_outs, fake_outs)
    per_disc = []
    for r, f in zip(real_outs, fake_outs):
        if len(r) != len(f) or len(r) < 2:
            raise ValueError(
                f"sub-discriminator outputs must hold >= 1 feature map plus logits and match; "
                f"got {len(r)} real vs {len(f)} fake tensors"
            )
        terms = []
        for fr, ff in zip(r[:-1], f[:-1]):
            fr = fr.detach()
            term = l1_mean(fr, ff)
            if relative:
                term = term / abs_mean(fr).clamp(min=1e-8)
            terms.append(term)
        per_disc.append(torch.stack(terms).mean())
    return torch.stack(per_disc).mean()


def summed_feature_matching_loss(real_outs: DiscOutputs, fake_outs: DiscOutputs) -> Tensor:
    """sum_k sum_l mean |D_k^l(x) - D_k^l(x̂)| over all feature maps (DAC, HiFi-GAN).

    Args:
        real_outs (list[list[Tensor]]): discriminator outputs on real audio.
        fake_outs (list[list[Tensor]]): outputs on generated audio (same structure).

    Returns:
        Tensor: scalar.

    Raises:
        ValueError: mismatched structures (see
            :func:`~codectk.losses.adversarial.feature_matching_loss`).
    """
    if len(real_outs) != len(fake_outs):
        raise ValueError(f"{len(real_outs)} real vs {len(fake_outs)} fake sub-discriminators")
    terms = [(len(r) - 1) * feature_matching_loss([r], [f]) for r, f in zip(real_outs, fake_outs)]
    return torch.stack(terms).sum()


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


FEATURE_MATCHING = {
    "mean": feature_matching_loss,
    "relative": functools.partial(feature_matching_loss, relative=True),
    "summed": summed_feature_matching_loss,
    "flat": flat_feature_matching_loss,
}
"""The forms of L_feat, by the name :class:`~codectk.losses.objective.GANObjective` takes."""


def discriminator_objective(
    real_outs: DiscOutputs, fake_outs: DiscOutputs, loss_type: str = "hinge", scale: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_D as the codec losses report it: ``scale`` x (real term + fake term).

    Args:
        real_outs, fake_outs: discriminator outputs on real audio and on the detached
            reconstruction.
        loss_type (str): "hinge", "hinge_linear" or "mse".
        scale (float): factor on both terms (DAC sums over sub-discriminators: their count).

    Returns:
        tuple[Tensor, dict[str, Tensor]]: total, and detached "real", "fake", "total".
    """
    real, fake = discriminator_loss_terms(real_outs, fake_outs, loss_type)
    real, fake = scale * real, scale * fake
    total = real + fake
    return total, {"real": real.detach(), "fake": fake.detach(), "total": total.detach()}
