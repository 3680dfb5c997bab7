"""A ``checkpoint.pt`` written by codectk before the sync-free step (commit ab60db3, see
test/train/old_checkpoint.py) still loads and resumes: 3 more steps give main's weights,
bit for bit where the step computes as main's did (real and fake in separate
discriminator calls, no weight-norm cache), and within Adam's rounding bound with
today's defaults."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
import torch

import codectk.train.trainer as trainer_module
from codectk.config import build_train_config
from codectk.train.trainer import Trainer
from test.single_thread import one_torch_thread  # noqa: F401
from test.train.old_checkpoint import FIXTURE, small_conf

LR = 0.001  # the fixture's Adam learning rate (test/helpers.py)


def _resume(tmp_path: Path, dumped, **overrides) -> Trainer:
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(FIXTURE / "checkpoint_step3.pt", exp / "checkpoint.pt")
    shutil.copy(FIXTURE / "3steps.pt", exp / "3steps.pt")
    t = Trainer(build_train_config(small_conf(max_steps=6, **overrides)), exp, *dumped.values())
    assert t.step == 3 and t.n_skipped == 0 and t.nbest == [(pytest.approx(1.8347, 1e-4), 3)]
    t.run()
    return t


def test_a_checkpoint_of_main_resumes_to_mains_weights(tmp_path: Path, dumped, monkeypatch):
    monkeypatch.setattr(trainer_module, "cached_weights", lambda m: contextlib.nullcontext())
    t = _resume(tmp_path, dumped, discriminator_batch="none")
    want = torch.load(FIXTURE / "weights_step6.pt", weights_only=True)
    for part, module in (("codec", t.codec), ("discriminator", t.disc)):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(v, want[part][k], rtol=0, atol=0, msg=f"{part}.{k}")


def test_with_todays_defaults_within_adams_rounding_bound(tmp_path: Path, dumped):
    """One discriminator call for real and fake rounds its sums otherwise; Adam's early
    steps move each entry by about lr x sign(g), so an entry whose gradient rounding
    flips can end up to 2 lr per step away (3 steps here); the buffers (EMA codebooks)
    follow the same inputs and must stay within 1e-3 of their scale."""
    t = _resume(tmp_path, dumped)
    want = torch.load(FIXTURE / "weights_step6.pt", weights_only=True)
    for part, module in (("codec", t.codec), ("discriminator", t.disc)):
        params = dict(module.named_parameters())
        for k, v in module.state_dict().items():
            w = want[part][k]
            if not v.is_floating_point():
                assert torch.equal(v, w), f"{part}.{k}"
                continue
            err = float((v - w).abs().max())
            bound = 2 * LR * 3 if k in params else 1e-3 * float(w.abs().max())
            assert err <= bound + 1e-6, f"{part}.{k}: {err:.3g} > {bound:.3g}"
