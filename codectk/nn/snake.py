"""Snake activation with a learned per-channel frequency.

Ziyin, Hartwig, Ueda, "Neural Networks Fail to Learn Periodic Functions and How to Fix
It", NeurIPS 2020, eq. (3); used by BigVGAN and by DAC (Kumar et al., "High-Fidelity
Audio Compression with Improved RVQGAN", NeurIPS 2023, §3.1, eq. 1)::

    snake(x) = x + (1 / alpha) * sin^2(alpha * x)

with one alpha per channel, initialised to 1 and learned. As in the DAC authors' code,
1e-9 is added to alpha before the reciprocal, so alpha = 0 does not divide by zero
(snake then tends to x).

Training runs through :class:`SnakeFunction`: float32 (or float64) arithmetic inside
whatever the input dtype (a bf16 activation stays bf16 in and out under autocast, instead of being
promoted to float32 by the float32 ``alpha``), only ``x`` saved for the backward pass, and
the closed-form derivatives::

    dy/dx     = 1 + sin(2 alpha x) alpha / (alpha + eps)
    dy/dalpha = x sin(2 alpha x) / (alpha + eps) - sin^2(alpha x) / (alpha + eps)^2

On CUDA the forward and backward bodies are each compiled into one fused kernel
(``torch.compile``; eager arithmetic where compiling is not possible).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def _wide(t: Tensor) -> Tensor:
    """``t`` in float32, or wider if it is (float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _forward_math(x: Tensor, alpha: Tensor, eps: float) -> Tensor:
    xf, af = _wide(x), _wide(alpha)
    # the same expression as the DAC authors' snake, in float32
    return (xf + (af + eps).reciprocal() * torch.sin(af * xf).pow(2)).to(x.dtype)


def _backward_math(
    grad: Tensor, x: Tensor, alpha: Tensor, eps: float, alpha_shape: list[int]
) -> tuple[Tensor, Tensor]:
    g, xf, af = _wide(grad), _wide(x), _wide(alpha)
    inv = (af + eps).reciprocal()
    ax = af * xf
    sin2 = torch.sin(2 * ax)  # 2 sin cos
    grad_x = g * (1 + sin2 * af * inv)
    grad_alpha = g * (xf * sin2 * inv - torch.sin(ax).pow(2) * inv * inv)
    shape = [1] * (grad_alpha.dim() - len(alpha_shape)) + alpha_shape  # broadcast shape
    dims = [d for d, n in enumerate(shape) if n == 1 and grad_alpha.shape[d] != 1]
    if dims:
        grad_alpha = grad_alpha.sum(dim=dims, keepdim=True)
    return grad_x.to(x.dtype), grad_alpha.reshape(alpha_shape).to(alpha.dtype)


_KERNELS: dict[str, tuple] = {}


def _kernels(device_type: str) -> tuple:
    """(forward, backward) bodies: compiled once per process on CUDA, eager elsewhere."""
    if device_type != "cuda":
        return _forward_math, _backward_math
    if device_type not in _KERNELS:
        _KERNELS[device_type] = (
            torch.compile(_forward_math, dynamic=True),
            torch.compile(_backward_math, dynamic=True),
        )
    return _KERNELS[device_type]


def _call(which: int, device_type: str, *args):
    fn = _kernels(device_type)[which]
    if fn is _forward_math or fn is _backward_math:
        return fn(*args)
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - no compiler/triton: fall back, said once
        log.warning(
            "snake: torch.compile unavailable on %s (%s); eager arithmetic", device_type, exc
        )
        _KERNELS[device_type] = (_forward_math, _backward_math)
        return (_forward_math, _backward_math)[which](*args)


class SnakeFunction(torch.autograd.Function):
    """Snake with float32 arithmetic and the input's dtype out (see module doc).

    ``apply(x, alpha, eps)``: x (B, C, T) in any float dtype, alpha broadcastable to it
    (e.g. (1, C, 1), float32); returns (B, C, T) in x's dtype. Gradients: x's dtype for
    x, alpha's dtype for alpha (summed over the broadcast dimensions).
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(x, alpha)
        ctx.eps = eps
        return _call(0, x.device.type, x, alpha, eps)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, alpha = ctx.saved_tensors
        grad_x, grad_alpha = _call(1, x.device.type, grad, x, alpha, ctx.eps, list(alpha.shape))
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            grad_alpha if ctx.needs_input_grad[1] else None,
            None,
        )


def snake(x: Tensor, alpha: Tensor, eps: float = 1e-9) -> Tensor:
    """Snake function x + sin^2(alpha x) / (alpha + eps) (DAC eq. 1).

    Args:
        x (Tensor): input (B, C, T) (any trailing shape after C works), any float dtype.
        alpha (Tensor): frequencies broadcastable to ``x``, e.g. (1, C, 1).
        eps (float): added to alpha before the reciprocal.

    Returns:
        Tensor: same shape as ``x``; with gradients enabled, also x's dtype (float32
        arithmetic inside, :class:`SnakeFunction`).
    """
    if torch.is_grad_enabled():
        return SnakeFunction.apply(x, alpha, eps)
    # Inference: one new tensor, updated in place (a third of the memory traffic and
    # allocations of the expression above, the same values).
    y = torch.mul(x, alpha)
    y.sin_().square_()
    return torch.addcmul(x, y, (alpha + eps).reciprocal(), out=y)


class Snake1d(nn.Module):
    """Snake activation over (B, C, T) tensors with a learned alpha per channel.

    Args:
        channels (int): C; ``alpha`` is a parameter of shape (1, C, 1), initialised to 1.

    Raises:
        ValueError: for ``channels < 1``.
    """

    def __init__(self, channels: int):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Apply snake.

        Args:
            x (Tensor): (B, C, T).

        Returns:
            Tensor: (B, C, T).

        Raises:
            ValueError: when ``x`` is not (B, C, T) with this module's C.
        """
        if x.dim() != 3 or x.shape[1] != self.alpha.shape[1]:
            raise ValueError(f"expected (B, {self.alpha.shape[1]}, T), got {tuple(x.shape)}")
        return snake(x, self.alpha)

    def extra_repr(self) -> str:
        return f"channels={self.alpha.shape[1]}"
