"""Tests of codectk.nn.snake: closed-form values, per-channel alpha, gradients."""

import math

import pytest
import torch

from codectk.nn.snake import Snake1d, snake


def test_snake_closed_form_values():
    # snake(x) = x + sin^2(alpha x) / alpha (DAC eq. 1)
    x = torch.tensor([[[0.0, math.pi / 2, 1.0, -2.0]]])
    alpha = torch.tensor([[[2.0]]])
    expected = torch.tensor(
        [[[0.0, math.pi / 2 + 0.0, 1.0 + math.sin(2.0) ** 2 / 2.0, -2.0 + math.sin(-4.0) ** 2 / 2]]]
    )
    torch.testing.assert_close(snake(x, alpha), expected, rtol=1e-6, atol=1e-6)
    # alpha = 1 at pi / 2: x + 1
    torch.testing.assert_close(
        snake(torch.tensor([[[math.pi / 2]]]), torch.ones(1, 1, 1)),
        torch.tensor([[[math.pi / 2 + 1.0]]]),
    )


def test_snake1d_per_channel_alpha_and_gradient():
    act = Snake1d(3)
    assert act.alpha.shape == (1, 3, 1) and torch.equal(act.alpha, torch.ones(1, 3, 1))
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.5, 1.0, 4.0]).view(1, 3, 1))
    x = torch.full((2, 3, 5), 0.7)
    y = act(x)
    for c, a in enumerate((0.5, 1.0, 4.0)):
        torch.testing.assert_close(y[:, c], torch.full((2, 5), 0.7 + math.sin(a * 0.7) ** 2 / a))
    y.sum().backward()
    assert act.alpha.grad is not None and act.alpha.grad.abs().min() > 0


def test_snake1d_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"expected \(B, 3, T\)"):
        Snake1d(3)(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="channels must be >= 1"):
        Snake1d(0)
