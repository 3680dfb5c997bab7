"""Checkpoint averaging. The model and training-state files themselves (format tags,
atomic writes, safe loads) are :mod:`codectk.io.modelfile`'s."""

from __future__ import annotations

import torch


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Average floating-point tensors over snapshots; other tensors come from the last one.

    Raises:
        ValueError: empty list or snapshots with different keys.
    """
    if not state_dicts:
        raise ValueError("no state dicts to average")
    keys = set(state_dicts[0])
    for sd in state_dicts[1:]:
        if set(sd) != keys:
            raise ValueError("cannot average snapshots with different parameters")
    out = {}
    for key, last in state_dicts[-1].items():
        if torch.is_floating_point(last):
            out[key] = (
                sum(sd[key].double() for sd in state_dicts).div(len(state_dicts)).to(last.dtype)
            )
        else:
            out[key] = last.clone()
    return out
