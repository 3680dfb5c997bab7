"""The one GAN codec objective every family's loss is a preset of.

A codec objective is a weighted sum of three kinds of terms::

    L_G = sum_r lambda_r L_r(x, x̂)                      reconstruction (the family's own)
          + lambda_adv L_adv(D(x̂)) + lambda_feat L_feat(D(x), D(x̂))   adversarial
          + lambda_commit L_commit + lambda_codebook L_codebook        quantizer
    L_D = s (L_real + L_fake)

:class:`GANObjective` owns all of it: the weights (checked once), the time-domain L1,
the adversarial and feature-matching terms (which loss, averaged or summed over the K
sub-discriminators, which feature-matching form), the quantizer's terms, the order of the
sum (the order of the family's ``WEIGHTS``: float addition is not associative, so a preset
keeps its authors' order), the detached parts that are logged, and L_D. A family's loss
(``codec_gan``, ``dac``, ``esc``, ``encodec``, ``funcodec``, ``hificodec``,
``ladiffcodec_ae``) is a subclass that states its default ``WEIGHTS`` and builds its
spectral losses from sections of ``loss_conf`` (:meth:`GANObjective.spectral`). EnCodec's
balancer and FunCodec's logged ``gen`` override :meth:`GANObjective.combine`.

A family's ``loss_conf`` therefore has one ``weights`` section (term -> weight; the terms
not named keep the family's default) and one section per spectral loss, the arguments of
the class that computes it::

    loss: dac
    loss_conf:
      weights: {mel: 15.0, adv: 1.0, feat: 2.0, commit: 0.25, codebook: 1.0}
      mel: {windows: [32, 64, 128, 256, 512, 1024, 2048], eps: 1.0e-5}

(configs written before config version 2 had flat keys, ``lambda_mel`` and
``mel_windows``; :func:`codectk.config.build_train_config` rewrites them.)

Discriminator outputs are ``list[list[Tensor]]``: one inner list per sub-discriminator,
its feature maps followed by its logits (:mod:`codectk.losses.adversarial`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from codectk.errors import ConfigError, check_choice
from codectk.losses.adversarial import (
    FEATURE_MATCHING,
    LOSS_TYPES,
    discriminator_objective,
    generator_adversarial_loss,
)
from codectk.registry import Registry, build_section

LOSSES = Registry("loss")

DiscOutputs = list[list[Tensor]]

QUANTIZER_TERMS = ("commit", "codebook")
ADVERSARIAL_TERMS = ("adv", "feat")


def weighted_total(
    terms: dict[str, Tensor], weights: dict[str, float], like: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum ``weights[name] * term`` in the order of ``terms``.

    Args:
        terms (dict[str, Tensor]): unweighted scalar terms.
        weights (dict[str, float]): weight per term name.
        like (Tensor): gives the dtype and device of the zero the sum starts from.

    Returns:
        tuple[Tensor, dict[str, Tensor]]: the total (with graph) and the detached
        unweighted terms plus ``"total"``.

    Raises:
        KeyError: a term without a weight.
    """
    total = like.new_zeros(())
    for name, value in terms.items():
        total = total + weights[name] * value
    parts = {name: value.detach() for name, value in terms.items()}
    parts["total"] = total.detach()
    return total, parts


class GANObjective(nn.Module):
    """Generator and discriminator objectives of a GAN codec (see module doc).

    Subclasses set :attr:`WEIGHTS`, build their spectral losses with :meth:`spectral`
    and register themselves in :data:`LOSSES`. Their constructors take ``sample_rate``
    (int, Hz, for the spectral losses), ``weights`` (the config's ``loss_conf.weights``,
    passed here) and one ``loss_conf`` section (dict | None) per spectral loss, and raise
    ConfigError for a term the family does not have, a section key its loss does not
    take, or a negative weight.

    Attributes:
        WEIGHTS (dict[str, float]): the family's terms and default weights, in the order
            of the sum. ``adv``, ``feat``, ``commit`` and ``codebook`` are the adversarial
            and quantizer terms, ``time`` the waveform L1 mean |x - x̂|; any other name
            is the spectral loss built as ``<name>_loss`` (or a ``<name>_loss`` method).

    Args:
        weights (Mapping[str, float] | None): the config's ``loss_conf.weights``: weights
            replacing the defaults of the terms it names. A term weighted 0 is not
            computed.
        adversarial_loss_type (str): "hinge" (SoundStream), "hinge_linear" (EnCodec's
            code) or "mse" (LSGAN / HiFi-GAN), for L_adv and L_D.
        feature_matching (str): "mean" (SoundStream eq. 3: mean over sub-discriminators
            of the mean over their maps), "relative" (EnCodec §3.4: each map's term over
            the real map's mean magnitude), "summed" (DAC, HiFi-GAN: the sum over every
            map of every sub-discriminator) or "flat" (FunCodec: one mean over all maps).
        sum_over_discriminators (bool): L_adv and L_D summed over the K sub-discriminators
            (DAC, HiFi-GAN) instead of averaged.

    Raises:
        ConfigError (a ValueError): a term the family does not have, or a negative weight.
        ValueError: an unknown loss type or feature-matching form.
    """

    WEIGHTS: ClassVar[dict[str, float]] = {}

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        adversarial_loss_type: str = "hinge",
        feature_matching: str = "mean",
        sum_over_discriminators: bool = False,
    ):
        super().__init__()
        check_choice("adversarial_loss_type", adversarial_loss_type, LOSS_TYPES)
        check_choice("feature_matching", feature_matching, FEATURE_MATCHING)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.WEIGHTS))
        if unknown:
            raise ConfigError(
                f"loss_conf.weights: unknown term(s) {unknown}; "
                f"{type(self).__name__}'s terms are {list(self.WEIGHTS)}"
            )
        self.weights = {n: float(weights.get(n, w)) for n, w in self.WEIGHTS.items()}
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ConfigError(f"loss_conf.weights must be >= 0, got {negative}")
        self.adversarial_loss_type = adversarial_loss_type
        self.feature_matching = feature_matching
        self.sum_over_discriminators = sum_over_discriminators

    def weighted(self, name: str) -> bool:
        """Whether term ``name`` has a weight > 0 (and so is computed)."""
        return self.weights.get(name, 0.0) > 0

    def spectral(
        self, name: str, fn: Callable[..., nn.Module], conf: Mapping[str, Any] | None, **fixed
    ) -> None:
        """Build the loss of term ``name`` from its ``loss_conf`` section ``conf`` (the
        arguments of ``fn``; ``fixed``, e.g. ``sample_rate``, set by the family) and keep
        it as ``<name>_loss``.

        Raises:
            ConfigError: a key that is not an argument of ``fn`` or a wrongly typed value;
                whatever ``fn`` raises for a bad configuration.
        """
        setattr(self, f"{name}_loss", build_section(fn, conf, f"loss_conf.{name}", **fixed))

    def reconstruction_terms(self, wav: Tensor, wav_hat: Tensor) -> dict[str, Tensor]:
        """The reconstruction terms that are weighted, unweighted: ``time`` (mean
        |x - x̂|) and each other term's ``<name>_loss(x, x̂)``.

        Args:
            wav (Tensor): reference x, shape (B, 1, T).
            wav_hat (Tensor): reconstruction x̂, shape (B, 1, T).

        Returns:
            dict[str, Tensor]: scalar per term name.

        Raises:
            AttributeError: a weighted term the family built no loss for.
        """
        terms: dict[str, Tensor] = {}
        for name in self.weights:
            if name in ADVERSARIAL_TERMS + QUANTIZER_TERMS or not self.weighted(name):
                continue
            if name == "time":
                terms[name] = (wav - wav_hat).abs().mean()
            else:
                terms[name] = getattr(self, f"{name}_loss")(wav, wav_hat)
        return terms

    def adversarial_terms(
        self, fake_outs: DiscOutputs, real_outs: DiscOutputs | None
    ) -> dict[str, Tensor]:
        """``adv`` (from ``fake_outs``) and ``feat`` (needs ``real_outs``), if weighted."""
        terms: dict[str, Tensor] = {}
        if self.weighted("adv"):
            adv = generator_adversarial_loss(fake_outs, self.adversarial_loss_type)
            terms["adv"] = len(fake_outs) * adv if self.sum_over_discriminators else adv
        if real_outs is not None and self.weighted("feat"):
            terms["feat"] = FEATURE_MATCHING[self.feature_matching](real_outs, fake_outs)
        return terms

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
                (not detached); None (before the discriminator starts) skips L_adv and
                L_feat.
            real_outs (list[list[Tensor]] | None): outputs on ``wav``; None skips L_feat.
            commitment_loss (Tensor | None): scalar from the quantizer (None: skipped).
            codebook_loss (Tensor | None): scalar from the quantizer (None: skipped).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: the total (with graph) and the unweighted,
            detached terms that were computed, named as in ``weights``, plus "total".

        Raises:
            ValueError: ``wav`` and ``wav_hat`` differ in shape.
        """
        if wav.shape != wav_hat.shape:
            raise ValueError(f"wav {tuple(wav.shape)} and wav_hat {tuple(wav_hat.shape)} differ")
        terms = self.reconstruction_terms(wav, wav_hat)
        if fake_outs is not None:
            terms.update(self.adversarial_terms(fake_outs, real_outs))
        for name, value in zip(QUANTIZER_TERMS, (commitment_loss, codebook_loss)):
            if value is not None and self.weighted(name):
                terms[name] = value
        return self.combine({k: terms[k] for k in self.weights if k in terms}, wav_hat)

    def combine(self, terms: dict[str, Tensor], wav_hat: Tensor) -> tuple[Tensor, dict]:
        """The total of ``terms`` (in the order of ``weights``) and the logged parts."""
        return weighted_total(terms, self.weights, wav_hat)

    def discriminator(
        self, real_outs: DiscOutputs, fake_outs: DiscOutputs
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator objective L_D, averaged (or summed) over sub-discriminators.

        Args:
            real_outs (list[list[Tensor]]): discriminator outputs on real audio.
            fake_outs (list[list[Tensor]]): outputs on the detached reconstruction.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: total, and detached "real", "fake", "total".
        """
        scale = len(real_outs) if self.sum_over_discriminators else 1.0
        return discriminator_objective(real_outs, fake_outs, self.adversarial_loss_type, scale)


class MelGANObjective(GANObjective):
    """A family whose one spectral loss is ``mel`` (DAC, ESC, HiFi-Codec, FunCodec): the
    family is data, its :attr:`WEIGHTS`, :attr:`ADVERSARIAL` and mel loss.

    Attributes:
        MEL_LOSS: builds the mel loss from ``sample_rate``, :attr:`MEL` and the config's
            ``loss_conf.mel`` section (its arguments are the section's keys).
        MEL (dict): mel settings the family fixes (not for the config).
        ADVERSARIAL (dict): :class:`GANObjective`'s ``adversarial_loss_type``,
            ``feature_matching`` and ``sum_over_discriminators``.

    Args:
        sample_rate (int): Hz, for the mel filterbanks.
        weights (dict[str, float] | None): ``loss_conf.weights``.
        mel (dict | None): ``loss_conf.mel``, arguments of :attr:`MEL_LOSS`.

    Raises:
        ConfigError (a ValueError): an unknown term or mel key, a negative weight.
        ValueError: a bad mel configuration.
    """

    MEL_LOSS: ClassVar[Callable[..., nn.Module]]
    MEL: ClassVar[dict[str, Any]] = {}
    ADVERSARIAL: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        sample_rate: int,
        weights: dict[str, float] | None = None,
        mel: dict[str, Any] | None = None,
    ):
        super().__init__(weights, **self.ADVERSARIAL)
        self.spectral("mel", self.MEL_LOSS, mel, sample_rate=sample_rate, **self.MEL)
