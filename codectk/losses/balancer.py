"""EnCodec's loss balancer: each loss gets a fixed share of the output gradient.

Défossez, Copet, Synnaeve, Adi, "High Fidelity Neural Audio Compression" (EnCodec), TMLR
2023, §3.4 "Balancer". For losses l_i that depend on the model output x̂ only through x̂,
with g_i = dl_i / dx̂ and <||g_i||_2>_beta the exponential moving average of its norm,
the gradient sent back into the model is::

    G = sum_i  R * (lambda_i / sum_j lambda_j) * g_i / <||g_i||_2>_beta

with reference norm R = 1 and beta = 0.999, so lambda_i fixes the fraction of G that
loss i contributes whatever the natural scale of l_i. As in the authors' implementation
(audiocraft 1.3.0 ``audiocraft/losses/balancer.py``, checked bit for bit by
``test/parity/test_encodec_balancer.py``): norms are taken per batch item and averaged
(``per_batch_item``), the EMA is bias-corrected (sum of beta^k x_{t-k} over sum of beta^k,
in float64), and sum_j lambda_j runs over the losses present in the step. With
``balance_grads=False`` the gradient is the plain sum_i lambda_i g_i (the EMA is still
kept, as the authors' does).

Using it without changing the trainer: :meth:`Balancer.surrogate` returns a scalar whose
gradient w.r.t. the model parameters is exactly G backpropagated through x̂, namely
``(x̂ * sg(G)).sum()``, shifted so that its *value* is the effective loss
sum_i scale_i * l_i (what the authors log), so ``total.backward()`` does the rest.

Under ``torch.distributed`` the per-step norms are averaged over ranks before the EMA,
so every rank applies the same scales.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class Balancer(nn.Module):
    """Rescale per-loss gradients w.r.t. a shared output (EnCodec §3.4).

    Buffers: ``ema_norm`` and ``ema_weight`` (one entry per name of ``weights``), the
    numerator and denominator of the bias-corrected EMA of the gradient norms.

    Args:
        weights (dict[str, float]): lambda_i per loss name (>= 0, not all 0).
        total_norm (float): reference norm R of the combined gradient.
        ema_decay (float): beta, in [0, 1].
        per_batch_item (bool): norm of each example's gradient, averaged over the batch
            (the authors' default); otherwise the norm of the whole batch gradient.
        epsilon (float): added to the averaged norms before dividing.
        balance_grads (bool): rescale the gradients (the balancer proper); False sends
            sum_i lambda_i g_i (the authors' ``balance_grads``).

    Raises:
        ValueError: empty or negative weights, or ``ema_decay`` outside [0, 1].
    """

    def __init__(
        self,
        weights: dict[str, float],
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        epsilon: float = 1e-12,
        balance_grads: bool = True,
    ):
        super().__init__()
        if not weights or any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError(f"weights must be non-negative and not all zero, got {weights}")
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay {ema_decay} must lie in [0, 1]")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.names = list(self.weights)
        self.total_norm = total_norm
        self.ema_decay = ema_decay
        self.per_batch_item = per_batch_item
        self.epsilon = epsilon
        self.balance_grads = balance_grads
        self.register_buffer("ema_norm", torch.zeros(len(self.names), dtype=torch.float64))
        self.register_buffer("ema_weight", torch.zeros(len(self.names), dtype=torch.float64))

    def _norm(self, grad: Tensor) -> Tensor:
        if self.per_batch_item:
            return grad.flatten(1).norm(dim=1).mean()  # (B, ...) -> (B, N) -> (B,) -> ()
        return grad.norm()

    @torch.no_grad()
    def update_norms_(self, names: list[str], norms: Tensor) -> Tensor:
        """Add this step's gradient norms to the EMA and return the averaged norms.

        Args:
            names (list[str]): loss names, a subset of ``weights``.
            norms (Tensor): (len(names),) norms of this step (rank-averaged here).

        Returns:
            Tensor: (len(names),) bias-corrected EMA <||g_i||_2>_beta, float64.
        """
        norms = norms.detach().to(self.ema_norm.dtype)
        if _world_size() > 1:
            norms = norms.clone()
            dist.all_reduce(norms, op=dist.ReduceOp.SUM)
            norms = norms / _world_size()
        index = torch.tensor([self.names.index(n) for n in names], device=norms.device)
        self.ema_norm[index] = self.ema_norm[index] * self.ema_decay + norms
        self.ema_weight[index] = self.ema_weight[index] * self.ema_decay + 1.0
        return self.ema_norm[index] / self.ema_weight[index]

    def gradient(
        self, losses: dict[str, Tensor], output: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """The balanced gradient G of the losses w.r.t. ``output`` (updates the EMA).

        Args:
            losses (dict[str, Tensor]): scalar losses l_i, each a function of ``output``
                (graphs are retained).
            output (Tensor): x̂, e.g. the reconstruction (B, 1, T), requiring grad.

        Returns:
            tuple[Tensor, dict[str, float]]: G, detached, shape of ``output``; and the
            scale R lambda_i / (sum_j lambda_j) / <||g_i||> applied to each g_i (lambda_i
            without ``balance_grads``).

        Raises:
            ValueError: an unknown loss name (listing the known ones), no losses, or a loss
                that does not depend on ``output``.
        """
        unknown = sorted(set(losses) - set(self.weights))
        if unknown or not losses:
            raise ValueError(f"losses {sorted(losses)} must be a non-empty subset of {self.names}")
        names = list(losses)
        grads = [
            torch.autograd.grad(losses[n], output, retain_graph=True, allow_unused=True)[0]
            for n in names
        ]
        for n, g in zip(names, grads):
            if g is None:
                raise ValueError(f"loss {n!r} does not depend on the balanced output")
        avg = self.update_norms_(names, torch.stack([self._norm(g) for g in grads]))
        total_weight = sum(self.weights[n] for n in names)
        if self.balance_grads:
            scales = {
                n: self.weights[n] / total_weight * self.total_norm / (self.epsilon + float(a))
                for n, a in zip(names, avg)
            }
        else:
            scales = {n: self.weights[n] for n in names}
        combined = torch.zeros_like(output)
        for n, g in zip(names, grads):
            combined.add_(g, alpha=scales[n])
        return combined.detach(), scales

    def surrogate(self, losses: dict[str, Tensor], output: Tensor) -> Tensor:
        """A scalar whose backward sends exactly G through ``output``.

        Args:
            losses (dict[str, Tensor]): as :meth:`gradient`.
            output (Tensor): as :meth:`gradient`.

        Returns:
            Tensor: scalar with value sum_i scale_i * l_i (the effective loss) and gradient
            G w.r.t. ``output`` (hence G backpropagated into whatever produced it).

        Raises:
            ValueError: as :meth:`gradient`.
        """
        grad, scales = self.gradient(losses, output)
        dot = (output * grad).sum()
        effective = sum(scales[n] * losses[n].detach() for n in losses)
        return dot - dot.detach() + effective
