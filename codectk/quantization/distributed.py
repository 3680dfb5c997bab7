"""Collectives the quantizers use under ``torch.distributed`` (no-ops in one process).

EMA codebooks all-reduce their batch counts and sums; k-means starts, replacement vectors
and per-batch dropout draws of the exact mode come from rank 0. Each is one collective
enqueued on the device, not a host round trip; reading a broadcast value on the host is.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Processes in the job (1 without an initialised process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all ranks in place (no-op without an initialised process group)."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` with rank ``src``'s copy in place (no-op when not distributed)."""
    if world_size() > 1:
        dist.broadcast(tensor, src=src)
    return tensor
