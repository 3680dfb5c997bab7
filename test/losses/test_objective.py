"""codectk.losses.objective: the one GAN objective every family's loss is a preset of."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import Tensor

import codectk.losses  # noqa: F401  (registers every objective)
from codectk.losses.adversarial import generator_adversarial_loss
from codectk.losses.objective import LOSSES, GANObjective, weighted_total


class Counted(torch.nn.Module):
    """A spectral loss stand-in: scale * mean |x - x̂|, counting its calls."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale, self.calls = scale, 0

    def forward(self, wav: Tensor, wav_hat: Tensor) -> Tensor:
        self.calls += 1
        return self.scale * (wav - wav_hat).abs().mean()


class Probe(GANObjective):
    """Two reconstruction terms built from loss_conf sections, "a" and "b"."""

    WEIGHTS = dict(codebook=1.0, adv=2.0, b=0.0, a=1.0, feat=1.0, commit=0.5, time=0.0)

    def __init__(self, weights=None, a=None, b=None, **kwargs):
        super().__init__(weights, **kwargs)
        self.spectral("a", Counted, a)
        self.spectral("b", Counted, b, scale=2.0)


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
    loss = Probe()
    commit, codebook = torch.tensor(3.0), torch.tensor(4.0)
    total, parts = loss.generator(wav, wav_hat, None, None, commit, codebook)
    assert list(parts) == ["codebook", "a", "commit", "total"]  # WEIGHTS' order; no D yet
    assert (loss.a_loss.calls, loss.b_loss.calls) == (1, 0)  # weight 0: never computed
    assert total.item() == pytest.approx(4.0 + 1.0 + 0.5 * 3.0)
    fake, real = _outs(3, 0), _outs(3, 1)
    _, parts = loss.generator(wav, wav_hat, fake, None)  # no real outputs: no feat
    assert list(parts) == ["adv", "a", "total"]
    _, parts = loss.generator(wav, wav_hat, fake, real)
    assert list(parts) == ["adv", "a", "feat", "total"]
    with pytest.raises(ValueError, match="differ"):
        loss.generator(wav, wav_hat[..., :4])


def test_weights_replace_defaults_in_the_family_order_and_sections_are_checked():
    wav, wav_hat = torch.zeros(2, 1, 8), torch.ones(2, 1, 8)
    loss = Probe({"time": 0.5, "b": 1, "codebook": 0.0}, a={"scale": 3.0})
    assert loss.weights == dict(codebook=0.0, adv=2.0, b=1.0, a=1.0, feat=1.0, commit=0.5, time=0.5)
    assert list(loss.weights) == list(Probe.WEIGHTS)
    _, parts = loss.generator(wav, wav_hat)
    assert list(parts) == ["b", "a", "time", "total"]
    assert (parts["b"].item(), parts["a"].item(), parts["time"].item()) == (2.0, 3.0, 1.0)
    with pytest.raises(ValueError, match=r"loss_conf.weights: unknown term\(s\) \['mel'\]"):
        Probe({"mel": 1.0})
    with pytest.raises(ValueError, match=r"loss_conf.a: unknown key\(s\) \['n'\]"):
        Probe(a={"n": 1})
    with pytest.raises(ValueError, match=r"loss_conf.b: \['scale'\] are set by codectk"):
        Probe(b={"scale": 1.0})


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
        Probe(**kwargs)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        Probe({"a": -1.0})


def test_every_gan_objective_is_one_mechanism():
    """Each registered GAN loss only states its weights and builds its spectral losses
    (and, for EnCodec's balancer and FunCodec's logged gen_loss, how the total is
    formed)."""
    gan = [n for n in LOSSES.names() if issubclass(LOSSES.get(n), GANObjective)]
    assert set(gan) >= {"codec_gan", "dac", "encodec", "esc", "funcodec", "hificodec"}
    for name in gan:
        cls = LOSSES.get(name)
        assert cls.generator is GANObjective.generator, name
        assert cls.discriminator is GANObjective.discriminator, name
        assert cls.adversarial_terms is GANObjective.adversarial_terms, name
        assert cls.reconstruction_terms is GANObjective.reconstruction_terms, name
        assert list(inspect.signature(cls).parameters)[:2] == ["sample_rate", "weights"], name
        loss = LOSSES.build(name, {"sample_rate": 16000})
        assert isinstance(loss.weights, dict) and loss.weights, name
