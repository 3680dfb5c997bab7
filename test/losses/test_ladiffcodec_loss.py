"""LaDiffCodec's autoencoder objective (``loss: ladiffcodec_ae``); its values against the
authors' code are in test/parity/test_ladiffcodec_parity.py (opt-in)."""

from __future__ import annotations

import math

import pytest
import torch

from codectk.losses import LOSSES, LaDiffCodecAELoss
from codectk.losses.ladiffcodec_loss import neg_sd_sdr


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(2, 1, 4096, generator=g)
    return x, 0.8 * x + 0.01 * torch.randn(x.shape, generator=g)


def test_sd_sdr_by_hand(pair):
    x, y = pair
    e, t = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    a = (e * t).sum(-1) / (t * t).sum(-1)
    expect = -10 * torch.log10((a**2 * (t * t).sum(-1)) / ((e - t) ** 2).sum(-1))
    torch.testing.assert_close(neg_sd_sdr(x, y), expect[:, 0], rtol=1e-4, atol=1e-4)
    # scale-dependent: a gain on the estimate lowers it, unlike SI-SDR
    assert float(neg_sd_sdr(x, 0.5 * x).mean()) == pytest.approx(-10 * math.log10(4), abs=1e-3)


def test_mel_loss_counts_the_listed_windows_and_normalises_by_length(pair):
    x, y = pair
    one = LaDiffCodecAELoss(16000).mel_loss
    assert float(one(x, x)) == 0.0 and float(one(x, y)) > 0
    two = LaDiffCodecAELoss(16000, mel={"windows": [2048, 1024]}).mel_loss
    single_1024 = LaDiffCodecAELoss(16000, mel={"windows": [1024]}).mel_loss
    torch.testing.assert_close(two(x, y), one(x, y) + single_1024(x, y))
    # (sum |d| + sum d^2) / (8 T): the sums grow with the batch, the clip length divides
    torch.testing.assert_close(one(x.repeat(2, 1, 1), y.repeat(2, 1, 1)), 2 * one(x, y))


def test_generator_weights_and_discriminator(pair):
    x, y = pair
    g = torch.Generator().manual_seed(1)
    real = [[torch.randn(2, 3, 5, generator=g) for _ in range(4)] for _ in range(2)]
    fake = [[torch.randn(2, 3, 5, generator=g) for _ in range(4)] for _ in range(2)]
    loss = LOSSES.build("ladiffcodec_ae", {"sample_rate": 16000})
    total, parts = loss.generator(x, y, fake, real, torch.zeros(()), torch.zeros(()))
    assert set(parts) == {"time", "mel", "adv", "feat", "sdr", "total"}
    expect = 0.1 * parts["time"] + parts["mel"] + 3 * parts["adv"] + 3 * parts["feat"]
    torch.testing.assert_close(total, expect + 0.1 * parts["sdr"])
    rel = sum(
        (r - f).abs().mean() / r.abs().mean()
        for ro, fo in zip(real, fake)
        for r, f in zip(ro[:-1], fo[:-1])
    )
    torch.testing.assert_close(parts["feat"], rel / 6)
    near = x + 1e-7 * (y - x)
    assert float(loss.sdr_loss(x, near)) == -30.0  # clipped above 30 dB
    with pytest.raises(ValueError, match="weights must be >= 0"):
        LaDiffCodecAELoss(16000, weights={"sdr": -1})
    with pytest.raises(ValueError, match="windows must be a non-empty list"):
        LaDiffCodecAELoss(16000, mel={"windows": []})
