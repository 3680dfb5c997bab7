"""Snake activation with a learned per-channel frequency.

Ziyin, Hartwig, Ueda, "Neural Networks Fail to Learn Periodic Functions and How to Fix
It", NeurIPS 2020, eq. (3); used by BigVGAN and by DAC (Kumar et al., "High-Fidelity
Audio Compression with Improved RVQGAN", NeurIPS 2023, §3.1, eq. 1)::

    snake(x) = x + (1 / alpha) * sin^2(alpha * x)

with one alpha per channel, initialised to 1 and learned. As in the DAC authors' code,
1e-9 is added to alpha before the reciprocal, so alpha = 0 does not divide by zero
(snake then tends to x).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def snake(x: Tensor, alpha: Tensor, eps: float = 1e-9) -> Tensor:
    """Snake function x + sin^2(alpha x) / (alpha + eps) (DAC eq. 1).

    Args:
        x (Tensor): input (B, C, T) (any trailing shape after C works).
        alpha (Tensor): frequencies broadcastable to ``x``, e.g. (1, C, 1).
        eps (float): added to alpha before the reciprocal.

    Returns:
        Tensor: same shape as ``x``.
    """
    if torch.is_grad_enabled():
        return x + (alpha + eps).reciprocal() * torch.sin(alpha * x).pow(2)
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
