"""Issue 19's step changes against today's eager float32 step, on the demo's tiny DAC
(MPD + multi-band MRD, factorized codebooks with quantizer dropout), 3 steps on the CPU.

"Today" is ``discriminator_batch: none`` without the weight-norm cache and with the
CPU's default (foreach) optimizers, the host-checking path: the arithmetic of codectk
before these changes (test/train/test_old_checkpoint.py resumes a checkpoint of that
code to bit-identical weights in this mode). Each change is compared with it:

* real and fake in one discriminator call (``discriminator_batch: both``), the
  weight-norm cache and the discriminator in channels-last memory
  (``discriminator_memory_format: channels_last``): other float32 roundings of the same
  sums. SGD (lr 1e-3) for both
  networks, so that the weights move linearly in the gradients: loss parts within 1e-5
  relative, gradients before clipping within 1e-4 of each tensor's largest entry,
  weights after 3 steps within 1e-4 of each tensor's largest update (measured: about
  2e-6, 1e-5 and 1e-5);
* the fused AdamW with the device-side skip: the discriminator's loss and gradients of
  step 1 bit for bit (nothing before its optimizer changed), the generator's within the
  tolerances above (it sees the discriminator after a fused update); after step 1 the
  moments within 1e-4 and the discriminator's weights within 1e-6 (relative to each
  tensor's largest entry), the generator's within 2 lr;
  after 3 steps the loss parts within 1e-4 and the weights within 2 lr per step of each
  other (Adam's first steps move every entry by about lr x sign(g), and rounding flips
  the sign of gradients near zero).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

import codectk.train.trainer as trainer_module
from codectk.config import build_train_config, load_yaml
from codectk.train.trainer import Trainer
from test.single_thread import one_torch_thread  # noqa: F401
from test.train.test_sync_free import TINY_DAC

LR = 1e-3


class Record:
    """Loss parts, clipping norms and gradients before clipping of each step."""

    def __init__(self, monkeypatch):
        self.parts, self.norms, self.grads = [], [], []
        real = torch.nn.utils.clip_grad_norm_

        def spy(parameters, max_norm, *args, **kwargs):
            parameters = list(parameters)
            self.grads.append([p.grad.clone() if p.grad is not None else None for p in parameters])
            norm = real(parameters, max_norm, *args, **kwargs)
            self.norms.append(float(norm))
            return norm

        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)


def _run(tmp_path: Path, dumped, monkeypatch, name: str, *, cache: bool, optim: str, **conf):
    """3 steps of the tiny DAC; ``cache``: the weight-norm cache of two-call turns."""
    base = load_yaml(TINY_DAC)
    opt = {"lr": LR} if optim == "sgd" else {"lr": LR, "betas": [0.8, 0.99]}
    base.update(
        optim=optim,
        optim2=optim,
        optim_conf=dict(opt),
        optim2_conf=dict(opt),
        batch_size=2,
        segment_duration=0.2,
        discriminator_start_step=0,
        valid_max_duration=0.5,
    )
    base.update(conf)
    with monkeypatch.context() as m:
        if not cache:
            m.setattr(trainer_module, "cached_weights", lambda module: contextlib.nullcontext())
        rec = Record(m)
        t = Trainer(build_train_config(base), tmp_path / name, dumped["train"], dumped["valid"])
        snapshots = []
        for step in (1, 2, 3):
            t.step = step
            parts = t._train_step(t.train_set[step])
            rec.parts.append({k: float(v) for k, v in parts.items()})
            snapshots.append(
                {
                    **{f"g.{k}": v.detach().clone() for k, v in t.codec.named_parameters()},
                    **{f"d.{k}": v.detach().clone() for k, v in t.disc.named_parameters()},
                }
            )
            if optim == "adamw" and step == 1:
                moments = {
                    id(p): (s["exp_avg"].clone(), s["exp_avg_sq"].clone())
                    for opt in (t.opt, t.opt_d)
                    for p, s in opt.state.items()
                }
                rec.moments = [
                    moments[id(p)] for p in [*t.codec.parameters(), *t.disc.parameters()]
                ]
    rec.snapshots = snapshots
    return rec


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30)


def _compare_parts(ours: dict, ref: dict, tol: float, where: str) -> None:
    assert ours.keys() == ref.keys(), where
    for k, v in ref.items():
        assert abs(ours[k] - v) <= tol * max(abs(v), 1e-12), f"{where} {k}: {ours[k]} vs {v}"


@pytest.mark.parametrize("change", ["batch", "cache", "channels_last"])
def test_one_call_the_weight_norm_cache_and_channels_last_keep_the_step(
    tmp_path: Path, dumped, monkeypatch, change: str
):
    today = _run(
        tmp_path, dumped, monkeypatch, "today", cache=False, optim="sgd", discriminator_batch="none"
    )
    batch = "both" if change == "batch" else "none"
    layout = "channels_last" if change == "channels_last" else "contiguous"
    new = _run(
        tmp_path,
        dumped,
        monkeypatch,
        change,
        cache=change != "channels_last",
        optim="sgd",
        discriminator_batch=batch,
        discriminator_memory_format=layout,
    )
    if change == "channels_last":  # the 2-D weights really are NHWC, and stay so
        weights = [w for k, w in new.snapshots[2].items() if k.startswith("d.") and w.dim() == 4]
        assert weights and all(
            w.is_contiguous(memory_format=torch.channels_last) for w in weights if w.shape[1] > 1
        )
    for step in range(3):
        _compare_parts(new.parts[step], today.parts[step], 1e-5, f"step {step + 1}")
        for a, b in zip(new.norms[2 * step : 2 * step + 2], today.norms[2 * step : 2 * step + 2]):
            assert abs(a - b) <= 1e-5 * b
        for ga, gb in zip(new.grads[2 * step], today.grads[2 * step]):
            if gb is not None:
                assert _rel_err(ga, gb) <= 1e-4
    start = today.snapshots[0]
    for k, w in today.snapshots[2].items():
        update = float((w - start[k]).abs().max())
        err = float((new.snapshots[2][k] - w).abs().max())
        # + 1e-6 of the weight: float32 rounding of the weight itself (a few ulps)
        tol = 1e-4 * update + 1e-6 * float(w.abs().max())
        assert err <= tol, f"{k}: {err:.3g} vs update {update:.3g}"


def test_the_fused_step_with_its_device_skip_keeps_the_step(tmp_path: Path, dumped, monkeypatch):
    common = dict(optim="adamw", discriminator_batch="none")
    today = _run(tmp_path, dumped, monkeypatch, "today", cache=False, **common)
    fused = {"fused": True, "lr": LR, "betas": [0.8, 0.99]}
    new = _run(
        tmp_path,
        dumped,
        monkeypatch,
        "fused",
        cache=False,
        optim_conf=fused,
        optim2_conf=dict(fused),
        **common,
    )
    # the discriminator's turn comes first (d_first): its loss and gradients are the same
    # bits; the generator's turn then sees the discriminator after a fused update
    d_parts = {k: v for k, v in today.parts[0].items() if k.startswith("d_")}
    assert {k: new.parts[0][k] for k in d_parts} == d_parts
    assert all(a is None or torch.equal(a, b) for a, b in zip(new.grads[0], today.grads[0]))
    _compare_parts(new.parts[0], today.parts[0], 1e-5, "step 1")
    for ga, gb in zip(new.grads[1], today.grads[1]):
        assert gb is None or _rel_err(ga, gb) <= 1e-4
    for (m, v), (m0, v0) in zip(new.moments, today.moments):
        assert _rel_err(m, m0) <= 1e-4 and _rel_err(v, v0) <= 1e-4
    for k, w in today.snapshots[0].items():
        if k.startswith("d."):  # the same gradients: fused and foreach AdamW round alike
            assert _rel_err(new.snapshots[0][k], w) <= 1e-6, k
        else:  # Adam's lr g / (|g| + eps) moves by lr where g is near eps
            assert float((new.snapshots[0][k] - w).abs().max()) <= 2 * LR, k
    for step in (1, 2):
        _compare_parts(new.parts[step], today.parts[step], 1e-4, f"step {step + 1}")
    for k, w in today.snapshots[2].items():
        assert float((new.snapshots[2][k] - w).abs().max()) <= 2 * LR * 2 + 1e-6, k
