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


def build_optimizer(
    name: str, conf: dict, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """Build a registered optimizer over ``params``.

    Raises:
        ValueError: unknown name or key (listing the valid ones).
    """
    cls = OPTIMIZERS.get(name)
    conf = _tuples(conf)
    from codectk.registry import check_kwargs

    check_kwargs(cls, conf, where=f"optim_conf ({name})")
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
