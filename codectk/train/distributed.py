"""Distributed data parallel (DDP) helpers: process group set-up from torchrun's
environment, rank-agreed decisions, and the launcher command lines.

A training run with ``--ngpu N`` (one node) re-executes itself as::

    python -m torch.distributed.run --standalone --nproc_per_node N -m codectk.bin.train ...

and with ``--num_nodes M`` inside a SLURM allocation of M nodes (``slurm.pl --num_nodes
M``) as one ``srun`` task per node, each a torchrun agent meeting at the first node of the
allocation through the c10d rendezvous::

    srun --nodes M --ntasks-per-node 1 python -m torch.distributed.run --nnodes M \\
        --nproc_per_node N --rdzv_backend c10d --rdzv_endpoint <first node>:29400 \\
        --rdzv_id <SLURM_JOB_ID> -m codectk.bin.train ...

Each process finds RANK, WORLD_SIZE and LOCAL_RANK in its environment (set by torchrun);
NCCL is used on GPUs, gloo on CPU (``--ngpu N`` with no CUDA device runs N CPU processes,
which is how the tests exercise DDP).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

LAUNCHED_ENV = "CODECTK_LAUNCHED"  # set in the re-executed processes (no second launch)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job.

    Attributes:
        rank (int): global rank, 0..world_size-1.
        world_size (int): processes in the job (1 without DDP).
        local_rank (int): rank on this node (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one that writes checkpoints, logs and TensorBoard."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_from_env(use_cuda: bool) -> tuple[DistInfo, torch.device]:
    """Initialise the process group when torchrun started this process.

    Args:
        use_cuda (bool): one GPU per process (NCCL) or CPU processes (gloo).

    Returns:
        tuple[DistInfo, torch.device]: this rank and its device.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), torch.device("cuda" if use_cuda else "cpu")
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return info, device


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when ``flag`` holds on every rank (one tiny all-reduce under DDP)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when ``flag`` holds on at least one rank."""
    return not all_true(not flag, info, device)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch_command(
    argv: list[str], nproc: int, num_nodes: int = 1, env: dict | None = None
) -> list[str]:
    """The command that runs ``python -m codectk.bin.train <argv>`` on ``nproc``
    processes per node and ``num_nodes`` nodes (see the module docstring).

    Raises:
        RuntimeError: ``num_nodes > 1`` outside a SLURM allocation of that many nodes.
    """
    env = os.environ if env is None else env
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
    target = ["-m", "codectk.bin.train", *argv]
    if num_nodes <= 1:
        return [*torchrun, "--standalone", *target]
    nodes = int(env.get("SLURM_JOB_NUM_NODES", env.get("SLURM_NNODES", "0")))
    if nodes < num_nodes:
        raise RuntimeError(
            f"--num_nodes {num_nodes} needs a SLURM allocation of {num_nodes} nodes (found "
            f"SLURM_JOB_NUM_NODES={nodes or 'unset'}); run stage 5 through slurm.pl "
            f"(cmd_backend=slurm in cmd.sh) with --num_nodes {num_nodes}"
        )
    hostlist = env.get("SLURM_JOB_NODELIST", "")
    first = (
        subprocess.run(
            ["scontrol", "show", "hostnames", hostlist], capture_output=True, text=True
        ).stdout.split()
        or ["localhost"]
    )[0]
    port = env.get("CODECTK_RDZV_PORT", "29400")
    return [
        "srun",
        "--nodes",
        str(num_nodes),
        "--ntasks-per-node",
        "1",
        *torchrun,
        "--nnodes",
        str(num_nodes),
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"{first}:{port}",
        "--rdzv_id",
        env.get("SLURM_JOB_ID", "codectk"),
        *target,
    ]
