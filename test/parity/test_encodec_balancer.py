"""EnCodec's loss balancer against audiocraft 1.3.0's, bit for bit.

Reference: ``audiocraft/losses/balancer.py:77-136`` (``Balancer.backward``) with flashy
0.0.2's ``averager`` (``flashy/utils.py:19-37``, the bias-corrected EMA in Python floats).
Both sides get the same losses of the same output y, in the same order (the order of
audiocraft's compression solver: adv, feat, l1, msspec, ``solvers/compression.py:41-50``),
for several steps; compared with ``torch.equal`` (tolerance 0): the gradient sent into y,
the effective loss, and the EMA numerator and denominator of every gradient norm.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from codectk.losses.balancer import Balancer
from test.parity import audiocraft_ref
from test.single_thread import one_torch_thread  # noqa: F401

# audiocraft's compression solver: losses.{adv, feat, l1, msspec} (config/solver/compression/
# default.yaml:13-19), adv and feat named after the adversary (compression.py:42-48)
WEIGHTS = {"adv_msstftd": 4.0, "feat_msstftd": 4.0, "l1": 0.1, "msspec": 2.0}
CASES = [
    # the solver's settings (default.yaml:20-24)
    dict(balance_grads=True, total_norm=1.0, ema_decay=0.999, per_batch_item=True),
    dict(balance_grads=True, total_norm=2.5, ema_decay=0.9, per_batch_item=False),
    dict(balance_grads=True, total_norm=1.0, ema_decay=1.0, per_batch_item=True),
    dict(balance_grads=False, total_norm=1.0, ema_decay=0.999, per_batch_item=True),
]
STEPS = 4


def _losses(y: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """Four losses of y whose gradient norms differ by orders of magnitude."""
    spec = torch.fft.rfft(y, dim=-1).abs()
    spec_ref = torch.fft.rfft(ref, dim=-1).abs()
    return {
        "adv_msstftd": -torch.tanh(3 * y).mean(),
        "feat_msstftd": (torch.sigmoid(y) - torch.sigmoid(ref)).abs().mean() * 40,
        "l1": (y - ref).abs().mean(),
        "msspec": (spec - spec_ref).pow(2).mean() * 1e3,
    }


def _batch(step: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    y = torch.randn(3, 1, 64, generator=gen, dtype=torch.float64).to(dtype)
    ref = torch.randn(3, 1, 64, generator=gen, dtype=torch.float64).to(dtype)
    return y * (1 + step), ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_balancer_equals_audiocraft_bit_for_bit(case, dtype):
    ref_mod = audiocraft_ref.balancer()
    theirs = ref_mod.Balancer(dict(WEIGHTS), **case)
    ours = Balancer(dict(WEIGHTS), **case)
    for step in range(STEPS):
        y0, ref = _batch(step, dtype)
        y_theirs = y0.clone().requires_grad_(True)
        effective_theirs = theirs.backward(_losses(y_theirs, ref), y_theirs)
        y_ours = y0.clone().requires_grad_(True)
        surrogate = ours.surrogate(_losses(y_ours, ref), y_ours)
        surrogate.backward()
        assert torch.equal(y_ours.grad, y_theirs.grad), f"step {step}: gradient into y"
        assert torch.equal(surrogate.detach(), effective_theirs), f"step {step}: loss value"
        state = inspect.getclosurevars(theirs.averager).nonlocals
        names = list(WEIGHTS)
        total = torch.tensor([state["total"][n] for n in names], dtype=torch.float64)
        fix = torch.tensor([state["fix"][n] for n in names], dtype=torch.float64)
        assert torch.equal(ours.ema_norm, total), f"step {step}: EMA of the norms"
        assert torch.equal(ours.ema_weight, fix), f"step {step}: EMA bias correction"
