"""The trainer clips the generator at ``grad_clip`` and the discriminator at
``discriminator_grad_clip`` (DAC: 1000 and 10), or both at ``grad_clip`` when unset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config
from codectk.train.trainer import Trainer
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.mark.parametrize(("d_clip", "expected"), [(None, 1000.0), (1e-3, 1e-3)])
def test_discriminator_clip_applies_to_the_discriminator_only(
    tmp_path: Path, dumped, monkeypatch, d_clip, expected
):
    conf = make_soundstream_conf(
        grad_clip=1000.0, discriminator_grad_clip=d_clip, discriminator_start_step=0
    )
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    calls = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        norm = real(parameters, max_norm, *args, **kwargs)
        clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
        calls.append((parameters, max_norm, float(norm), float(clipped)))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    t.step = 1
    t._train_step(t.train_set[1])
    (d_params, d_max, d_norm, d_after), (g_params, g_max, _, _) = calls
    assert {id(p) for p in d_params} == {id(p) for p in t.disc.parameters()}
    assert {id(p) for p in g_params} == {id(p) for p in t.codec.parameters()}
    assert (d_max, g_max) == (expected, 1000.0)
    assert d_after == pytest.approx(min(d_norm, d_max), rel=1e-3)  # clipped to d_max
