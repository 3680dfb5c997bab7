"""How the trainer runs its networks (codectk.train.regions): real and fake in one
discriminator call give the two calls' outputs, discriminators with per-call state are
recognised, cached weight norm gives the same gradients, and the compile regions are the
blocks and sub-discriminators."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from codectk.config import load_yaml
from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES
from codectk.models import CODECS
from codectk.train.regions import (
    blocks,
    discriminator_regions,
    generator_regions,
    loss_regions,
    per_call_state,
    split_batch,
)
from test.conftest import REPO
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401

CONF = REPO / "egs" / "mini_librispeech" / "codec1" / "conf"
RECIPES = ["dac_16k_tiny", "encodec_16k_tiny", "soundstream_16k_tiny", "symAD_16k_tiny"]


def _discriminator(recipe: str) -> nn.Module:
    conf = load_yaml(CONF / f"{recipe}.yaml")
    return DISCRIMINATORS.build(conf["discriminator"], conf["discriminator_conf"])


@pytest.mark.parametrize("recipe", [*RECIPES, "helpers"])
def test_one_call_on_real_and_fake_gives_the_two_calls_outputs(recipe: str):
    if recipe == "helpers":  # MelGAN MSD + SoundStream's STFT discriminator
        conf = make_soundstream_conf()
        disc = DISCRIMINATORS.build(conf["discriminator"], conf["discriminator_conf"])
    else:
        disc = _discriminator(recipe)
    assert per_call_state(disc) is None
    torch.manual_seed(0)
    real, fake = torch.randn(2, 1, 6400) * 0.3, torch.randn(2, 1, 6400) * 0.3
    with torch.no_grad():
        both = split_batch(disc(torch.cat([real, fake])), 2)
        apart = disc(real), disc(fake)
    for one, other in zip(both, apart):
        for sub_one, sub_other in zip(one, other, strict=True):
            for a, b in zip(sub_one, sub_other, strict=True):
                # float32 convolutions of another batch size: rounding only
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def test_per_call_state_is_named():
    conf = load_yaml(CONF / "hificodec_16k_tiny.yaml")
    disc = DISCRIMINATORS.build(conf["discriminator"], conf["discriminator_conf"])
    assert "spectral norm in " in per_call_state(disc)
    assert per_call_state(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Dropout(0.1))) == "dropout in 1"
    assert per_call_state(nn.Sequential(nn.BatchNorm1d(2))) == "batch norm in 0"


def test_split_batch_refuses_outputs_that_mix_examples():
    with pytest.raises(Exception, match="not a batch of 4 first: it mixes examples"):
        split_batch([[torch.zeros(4, 3), torch.zeros(3, 4)]], 2)


def test_cached_weight_norm_gives_the_uncached_gradients():
    """Two calls under parametrize.cached() (one weight-norm computation) and one backward
    pass: the gradients of g and v are the two calls' sum (float64, rounding only)."""
    torch.manual_seed(0)
    conv = weight_norm(nn.Conv1d(3, 4, 5)).double()
    x, y = torch.randn(2, 3, 20, dtype=torch.float64), torch.randn(2, 3, 20, dtype=torch.float64)
    grads = []
    for cached in (False, True):
        conv.zero_grad()
        with parametrize.cached() if cached else torch.enable_grad():
            loss = conv(x).pow(2).sum() + conv(y).sin().sum()
        loss.backward()
        grads.append([p.grad.clone() for p in conv.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a second backward through the cache within one context is refused by autograd: the
    # trainer opens the cache around forward calls only
    conv.zero_grad()
    with parametrize.cached():
        conv(x).sum().backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            conv(y).sum().backward()


def test_regions_are_blocks_and_sub_discriminators():
    conf = load_yaml(CONF / "dac_16k_tiny.yaml")
    codec = CODECS.build("dac", conf["codec_conf"])
    names = [n for n, _ in generator_regions(codec)]
    # 4 encoder and 4 decoder blocks of 3 residual units each; strided convs and snakes
    # between them stay eager
    assert len(names) == 24 and all(
        type(m).__name__ == "DACResidualUnit" for _, m in generator_regions(codec)
    )
    assert not any("quantizer" in n for n in names)
    disc = _discriminator("dac_16k_tiny")
    subs = discriminator_regions(disc, torch.zeros(1, 1, 6080))
    kinds = [type(m).__name__ for _, m in subs]
    assert len(subs) == 5 + 2, kinds  # 5 periods, 2 STFT resolutions
    assert not disc.training or all(m.training for m in disc.modules())  # state restored
    loss = LOSSES.build("dac", {"sample_rate": 16000})
    assert [n for n, _ in loss_regions(loss)] == ["mel_loss"]


def test_blocks_leave_single_layers_out():
    net = nn.Sequential(
        nn.Conv1d(1, 2, 3),
        nn.Sequential(nn.Conv1d(2, 2, 3), nn.ELU(), nn.Conv1d(2, 2, 1)),
        nn.ELU(),
    )
    root = nn.Module()
    root.net = net
    assert blocks(root) == [net[1]]
