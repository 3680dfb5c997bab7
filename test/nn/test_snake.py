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


def test_fused_snake_gradcheck_float64():
    """SnakeFunction's closed-form derivatives against finite differences."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = (torch.rand(1, 3, 1, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: snake(a, b), (x, alpha))
    # alpha broadcast with fewer dimensions than x
    alpha2 = (torch.rand(3, 1, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: snake(a, b), (x, alpha2))


def test_fused_snake_equals_the_eager_expression():
    """Forward bit-equal to DAC's expression in float32, gradients within float rounding."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 50, generator=g, requires_grad=True)
    alpha = (torch.rand(1, 4, 1, generator=g) + 0.5).requires_grad_()
    y = snake(x, alpha)
    x2, a2 = x.detach().clone().requires_grad_(), alpha.detach().clone().requires_grad_()
    y2 = x2 + (a2 + 1e-9).reciprocal() * torch.sin(a2 * x2).pow(2)
    assert torch.equal(y, y2)
    w = torch.randn(y.shape, generator=g)
    (y * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alpha.grad, a2.grad, rtol=1e-4, atol=1e-5)


def test_fused_snake_keeps_bf16():
    """bf16 activations stay bf16 in and out (no promotion by the float32 alpha), and the
    values are the float32 computation rounded once."""
    act = Snake1d(4)
    with torch.no_grad():
        act.alpha.uniform_(0.5, 2.0)
    x = torch.randn(2, 4, 64).bfloat16().requires_grad_()
    y = act(x)
    assert y.dtype == torch.bfloat16
    ref = snake(x.detach().float(), act.alpha.detach()).bfloat16()
    assert torch.equal(y.detach(), ref)
    y.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and act.alpha.grad.dtype == torch.float32
    assert torch.isfinite(act.alpha.grad).all()
