"""Optimizer and learning-rate scheduler registries (``optim: adam`` + ``optim_conf``)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from codectk.registry import Registry

OPTIMIZERS = Registry("optim")
SCHEDULERS = Registry("scheduler")

OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("sgd")(torch.optim.SGD)
SCHEDULERS.register("exponentiallr")(torch.optim.lr_scheduler.ExponentialLR)
SCHEDULERS.register("steplr")(torch.optim.lr_scheduler.StepLR)
SCHEDULERS.register("cosineannealinglr")(torch.optim.lr_scheduler.CosineAnnealingLR)


def _tuples(conf: dict) -> dict:
    # YAML has no tuples; torch annotates betas as tuple[float, float].
    return {k: tuple(v) if isinstance(v, list) else v for k, v in conf.items()}


FUSED_ON_CUDA = ("adam", "adamw")


def device_defaults(name: str, conf: dict, device_type: str) -> dict:
    """``conf`` plus the implementation codectk picks for the device.

    On CUDA, Adam and AdamW default to the fused implementation (one kernel for the whole
    update, and a device-side ``found_inf`` skip under a gradient scaler) unless the
    config chooses ``fused`` or ``foreach`` itself; elsewhere nothing is added (the CPU
    default, which the parity tests compare with the authors' code).
    """
    if device_type == "cuda" and name in FUSED_ON_CUDA and not {"fused", "foreach"} & set(conf):
        return {**conf, "fused": True}
    return conf


def build_optimizer(
    name: str, conf: dict, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """Build a registered optimizer over ``params`` (fused Adam/AdamW on CUDA, see
    :func:`device_defaults`).

    Raises:
        ValueError: unknown name or key (listing the valid ones).
    """
    cls = OPTIMIZERS.get(name)
    conf = _tuples(conf)
    from codectk.registry import check_kwargs

    check_kwargs(cls, conf, where=f"optim_conf ({name})")
    params = list(params)
    devices = {p.device.type for p in params}
    if len(devices) == 1:
        conf = device_defaults(name, conf, devices.pop())
    return cls(params, **conf)


def build_scheduler(name: str, conf: dict, optimizer: torch.optim.Optimizer):
    """Build a registered LR scheduler (stepped once per training step); ``none``: None."""
    if name == "none":
        if conf:
            raise ValueError(f"scheduler 'none' takes no scheduler_conf, got {sorted(conf)}")
        return None
    cls = SCHEDULERS.get(name)
    from codectk.registry import check_kwargs

    check_kwargs(cls, conf, where=f"scheduler_conf ({name})")
    return cls(optimizer, **conf)
