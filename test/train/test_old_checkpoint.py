"""A ``checkpoint.pt`` written by codectk before the sync-free step (commit ab60db3, see
test/train/old_checkpoint.py) still loads and resumes: 3 more steps give main's weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from codectk.config import build_train_config
from codectk.train.trainer import Trainer
from test.single_thread import one_torch_thread  # noqa: F401
from test.train.old_checkpoint import FIXTURE, small_conf


def test_a_checkpoint_of_main_resumes_to_mains_weights(tmp_path: Path, dumped):
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(FIXTURE / "checkpoint_step3.pt", exp / "checkpoint.pt")
    shutil.copy(FIXTURE / "3steps.pt", exp / "3steps.pt")
    t = Trainer(build_train_config(small_conf(max_steps=6)), exp, *dumped.values())
    assert t.step == 3
    t.run()
    want = torch.load(FIXTURE / "weights_step6.pt", weights_only=True)
    for part, module in (("codec", t.codec), ("discriminator", t.disc)):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(v, want[part][k], rtol=0, atol=0, msg=f"{part}.{k}")
