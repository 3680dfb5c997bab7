"""Optimizer construction: registry errors and the per-device implementation defaults."""

from __future__ import annotations

import pytest
import torch

from codectk.train.optim import build_optimizer, build_scheduler, device_defaults


def test_fused_adam_by_default_on_cuda_only():
    conf = {"lr": 1e-4}
    assert device_defaults("adamw", conf, "cuda") == {"lr": 1e-4, "fused": True}
    assert device_defaults("adam", conf, "cuda")["fused"] is True
    assert device_defaults("adamw", conf, "cpu") == conf  # the parity tests' path
    assert device_defaults("sgd", conf, "cuda") == conf
    # the config's own choice wins
    assert device_defaults("adamw", {"foreach": True}, "cuda") == {"foreach": True}
    assert device_defaults("adamw", {"fused": False}, "cuda") == {"fused": False}


def test_build_optimizer_on_cpu_keeps_torch_defaults():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer("adamw", {"lr": 1e-3, "betas": [0.8, 0.99]}, [p])
    assert opt.defaults["betas"] == (0.8, 0.99) and not opt.defaults.get("fused")
    with pytest.raises(ValueError, match="optim_conf"):
        build_optimizer("adamw", {"lrr": 1e-3}, [p])
    with pytest.raises(ValueError, match="scheduler 'none'"):
        build_scheduler("none", {"gamma": 0.5}, opt)
