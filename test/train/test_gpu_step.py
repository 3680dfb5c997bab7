"""The sync-free step on CUDA (issue 19): marked ``gpu``, skipped without a GPU.

* CUDA's own synchronisation check (``torch.cuda.set_sync_debug_mode("warn")``) over
  non-logging steps of the tiny DAC with the CUDA defaults (fused AdamW, one
  discriminator call): at most one synchronising call per step (issue 19's target;
  the trainer itself makes none: a warning raised from codectk/train fails at once);
* a NaN generator loss skips the generator's update on the device (fused AdamW's
  ``found_inf``) and is reported at the log line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config, load_yaml
from codectk.train.trainer import NonFiniteLossError, Trainer
from test.train.test_sync_free import TINY_DAC

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _dac(tmp_path: Path, dumped, **overrides) -> Trainer:
    conf = load_yaml(TINY_DAC)  # optim_conf without fused: the CUDA default applies
    conf.update(batch_size=4, discriminator_start_step=0, log_interval=1000)
    conf.update(valid_max_duration=0.5, **overrides)
    return Trainer(build_train_config(conf), tmp_path / "exp", *dumped.values(), device="cuda")


def test_non_logging_steps_do_not_synchronise(tmp_path: Path, dumped):
    t = _dac(tmp_path, dumped, amp="bf16")
    assert t.device_skip and t.batch_d and t.batch_g
    t.step = 1
    t._train_step(t.train_set[1])  # first step: optimizer state, kernels, allocator
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for step in (2, 3, 4):
                t.step = step
                parts = t._train_step(t.train_set[step])
                t.steplog.add(step, t.train_set[step].utts, parts, t._checks, t._skips)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    where = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs})
    assert not [w for w in syncs if "/codectk/train/" in w.filename], where
    assert len(syncs) <= 3, f"{len(syncs)} synchronising calls in 3 steps: {where}"
    assert len(t.steplog.read()) == 3


def test_a_nan_step_is_skipped_on_the_device(tmp_path: Path, dumped, monkeypatch):
    t = _dac(tmp_path, dumped, max_steps=3, log_interval=3, valid_interval=3)
    real = t.loss.generator

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return (total * float("nan") if t.step == 2 else total), parts

    monkeypatch.setattr(t.loss, "generator", poisoned)
    before = {}
    real_step = t._train_step

    def recorded(batch):
        if t.step == 2:
            before["g"] = [p.detach().clone() for p in t.codec.parameters()]
        parts = real_step(batch)
        if t.step == 2:
            before["after"] = [p.detach().clone() for p in t.codec.parameters()]
        return parts

    monkeypatch.setattr(t, "_train_step", recorded)
    with pytest.raises(
        NonFiniteLossError, match="at step 2 on utterances .* skipped on the device"
    ):
        t.run()
    assert all(torch.equal(a, b) for a, b in zip(before["g"], before["after"]))
