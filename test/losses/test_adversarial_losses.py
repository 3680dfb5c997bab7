"""Hinge / least-squares adversarial losses and feature matching on hand-made tensors."""

from __future__ import annotations

import pytest
import torch

from codectk.losses import (
    discriminator_loss,
    discriminator_loss_terms,
    feature_matching_loss,
    generator_adversarial_loss,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# Two sub-discriminators; logits only (feature maps are irrelevant to these losses).
REAL = [[t(0.5, 2.0, -1.0)], [t(1.0, 0.0)]]
FAKE = [[t(-2.0, 0.0, 0.5)], [t(-0.5, -3.0)]]


def test_hinge_discriminator_loss_by_hand():
    real, fake = discriminator_loss_terms(REAL, FAKE, "hinge")
    # real: mean relu(1 - D): [0.5, 0, 2] -> 5/6 ; [0, 1] -> 1/2 ; average 2/3
    # fake: mean relu(1 + D): [0, 1, 1.5] -> 5/6 ; [0.5, 0] -> 1/4 ; average 13/24
    assert float(real) == pytest.approx(2 / 3)
    assert float(fake) == pytest.approx(13 / 24)
    assert float(discriminator_loss(REAL, FAKE)) == pytest.approx(2 / 3 + 13 / 24)


def test_hinge_generator_loss_by_hand():
    # mean relu(1 - D): [3, 1, 0.5] -> 1.5 ; [1.5, 4] -> 2.75 ; average 2.125
    assert float(generator_adversarial_loss(FAKE, "hinge")) == pytest.approx(2.125)


def test_hinge_linear_generator_loss_is_minus_mean_logit_and_d_loss_is_hinge():
    # -mean D: [-2, 0, 0.5] -> 0.5 ; [-0.5, -3] -> 1.75 ; average 1.125
    assert float(generator_adversarial_loss(FAKE, "hinge_linear")) == pytest.approx(1.125)
    assert float(discriminator_loss(REAL, FAKE, "hinge_linear")) == float(
        discriminator_loss(REAL, FAKE, "hinge")
    )


def test_mse_losses_by_hand():
    # real: (1 - D)^2: [0.25, 1, 4] -> 1.75 ; [0, 1] -> 0.5 ; fake: D^2: [4, 0, .25], [.25, 9]
    expected_d = (1.75 + 0.5) / 2 + (4.25 / 3 + 4.625) / 2
    assert float(discriminator_loss(REAL, FAKE, "mse")) == pytest.approx(expected_d)
    # (1 - D)^2: [9, 1, 0.25] -> 41/12 ; [2.25, 16] -> 9.125
    assert float(generator_adversarial_loss(FAKE, "mse")) == pytest.approx((41 / 12 + 9.125) / 2)


def test_unknown_loss_type_and_mismatch_raise():
    with pytest.raises(
        ValueError, match=r"'wgan' not supported; choose one of \['hinge', 'mse', 'hinge_linear'\]"
    ):
        discriminator_loss(REAL, FAKE, "wgan")
    with pytest.raises(ValueError, match="real vs"):
        discriminator_loss(REAL, FAKE[:1])


def test_feature_matching_by_hand_and_excludes_logits():
    real = [
        [t(1.0, 2.0, 3.0, 4.0), t(100.0)],
        [torch.ones(3), 2 * torch.ones(3), t(-100.0)],
    ]
    fake = [
        [t(1.0, 0.0, 3.0, 0.0), t(-100.0)],
        [0.5 * torch.ones(3), torch.ones(3), t(100.0)],
    ]
    # sub 1: mean |diff| = 1.5 ; sub 2: (0.5 + 1) / 2 = 0.75 ; logits ignored
    assert float(feature_matching_loss(real, fake)) == pytest.approx((1.5 + 0.75) / 2)
    # relative (EnCodec): 1.5 / 2.5 ; (0.5 / 1 + 1 / 2) / 2
    assert float(feature_matching_loss(real, fake, relative=True)) == pytest.approx(0.55)


def test_feature_matching_zero_for_identical_and_detaches_real():
    gen = torch.Generator().manual_seed(0)
    real = [[torch.randn(2, 4, 10, generator=gen, requires_grad=True), torch.randn(2, 1, 10)]]
    fake = [[real[0][0].detach().clone().requires_grad_(True), torch.randn(2, 1, 10)]]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == 0.0
    fake[0][0].data += 0.1
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(0.1, rel=1e-5)
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_feature_matching_needs_feature_maps():
    with pytest.raises(ValueError, match="feature map"):
        feature_matching_loss([[t(1.0)]], [[t(1.0)]])
