"""codectk.losses.objective: the one GAN objective every family's loss is a preset of."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import codectk.losses  # noqa: F401  (registers every objective)
from codectk.losses.adversarial import generator_adversarial_loss
from codectk.losses.objective import LOSSES, GANObjective, weighted_total


class Probe(GANObjective):
    """Two reconstruction terms that count their calls."""

    def __init__(self, weights, **kwargs):
        super().__init__(weights, **kwargs)
        self.calls = {"a": 0, "b": 0}

    def reconstruction_terms(self, wav: Tensor, wav_hat: Tensor) -> dict[str, Tensor]:
        terms = {}
        for name, scale in (("a", 1.0), ("b", 2.0)):
            if self.weighted(name):
                self.calls[name] += 1
                terms[name] = scale * (wav - wav_hat).abs().mean()
        return terms


def _outs(k: int, seed: int) -> list[list[Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(2, 3, 5, generator=g), torch.randn(2, 1, 5, generator=g)]] * k


def test_weighted_total_keeps_the_graph_and_logs_detached_parts():
    x = torch.tensor(2.0, requires_grad=True)
    total, parts = weighted_total({"a": x * 3, "b": x}, {"a": 0.5, "b": 2.0}, x)
    assert total.item() == pytest.approx(0.5 * 6 + 2 * 2)
    total.backward()
    assert x.grad.item() == pytest.approx(0.5 * 3 + 2.0)
    assert set(parts) == {"a", "b", "total"} and not any(p.requires_grad for p in parts.values())
    with pytest.raises(KeyError):
        weighted_total({"c": x}, {}, x)


def test_terms_follow_the_weights_their_order_and_what_is_given():
    wav, wav_hat = torch.zeros(2, 1, 8), torch.ones(2, 1, 8)
    loss = Probe({"codebook": 1.0, "adv": 2.0, "b": 0.0, "a": 1.0, "feat": 1.0, "commit": 0.5})
    commit, codebook = torch.tensor(3.0), torch.tensor(4.0)
    total, parts = loss.generator(wav, wav_hat, None, None, commit, codebook)
    assert list(parts) == ["codebook", "a", "commit", "total"]  # weights' order; no D yet
    assert loss.calls == {"a": 1, "b": 0}  # weight 0: never computed
    assert total.item() == pytest.approx(4.0 + 1.0 + 0.5 * 3.0)
    fake, real = _outs(3, 0), _outs(3, 1)
    _, parts = loss.generator(wav, wav_hat, fake, None)  # no real outputs: no feat
    assert list(parts) == ["adv", "a", "total"]
    _, parts = loss.generator(wav, wav_hat, fake, real)
    assert list(parts) == ["adv", "a", "feat", "total"]
    with pytest.raises(ValueError, match="differ"):
        loss.generator(wav, wav_hat[..., :4])


def test_sum_over_discriminators_scales_adv_and_the_discriminator():
    wav = torch.zeros(2, 1, 8)
    fake, real = _outs(3, 0), _outs(3, 1)
    mean = Probe({"adv": 1.0}, adversarial_loss_type="mse")
    summed = Probe({"adv": 1.0}, adversarial_loss_type="mse", sum_over_discriminators=True)
    _, p_mean = mean.generator(wav, wav, fake)
    _, p_sum = summed.generator(wav, wav, fake)
    torch.testing.assert_close(p_mean["adv"], generator_adversarial_loss(fake, "mse"))
    torch.testing.assert_close(p_sum["adv"], 3 * p_mean["adv"])
    torch.testing.assert_close(
        summed.discriminator(real, fake)[0], 3 * mean.discriminator(real, fake)[0]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"adversarial_loss_type": "wgan"}, "adversarial_loss_type 'wgan' not supported"),
        ({"feature_matching": "max"}, "feature_matching 'max' not supported"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Probe({"a": 1.0}, **kwargs)
    with pytest.raises(ValueError, match="loss weights must be >= 0"):
        Probe({"a": -1.0})


def test_every_gan_objective_is_one_mechanism():
    """Each registered GAN loss only adds reconstruction terms (and, for EnCodec's
    balancer and FunCodec's logged gen_loss, how the total is formed)."""
    gan = [n for n in LOSSES.names() if issubclass(LOSSES.get(n), GANObjective)]
    assert set(gan) >= {"codec_gan", "dac", "encodec", "esc", "funcodec", "hificodec"}
    for name in gan:
        cls = LOSSES.get(name)
        assert cls.generator is GANObjective.generator, name
        assert cls.discriminator is GANObjective.discriminator, name
        assert cls.adversarial_terms is GANObjective.adversarial_terms, name
        loss = LOSSES.build(name, {"sample_rate": 16000})
        assert isinstance(loss.weights, dict) and loss.weights, name
