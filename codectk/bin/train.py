"""Stage 5: train a codec.

Usage::

    python -m codectk.bin.train --config conf/soundstream_16k_tiny.yaml \\
        --train_data dump/raw/train --valid_data dump/raw/valid \\
        --output_dir exp/codec_soundstream_16k_tiny [--ngpu 0] [--num_nodes 1] \\
        [--resume true] [--max_steps 200 --amp bf16 --codec_conf.encoder.n_filters 16 ...]

Options after the known ones override config keys (dotted for nested keys);
``${exp:NAME}`` in the config is ``<output_dir's parent>/codec_NAME``, an earlier phase
(:mod:`codectk.phase`). A re-run
resumes from ``<output_dir>/checkpoint.pt``; a finished run only re-averages.

``--ngpu N`` with N > 1 re-executes this command under ``torchrun --standalone
--nproc_per_node N`` (DDP, NCCL, one GPU per process); with no CUDA device visible it runs
N CPU processes (gloo) instead, with a warning. ``--num_nodes M`` inside a SLURM allocation
of M nodes starts one torchrun agent per node with ``srun`` (see
:mod:`codectk.train.distributed`). ``batch_size`` is the global batch: each process
takes ``batch_size / (N * M)`` examples per step.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import torch

from codectk.bin.common import add_num_threads_arg, parser, run, set_num_threads, str2bool
from codectk.config import load_config_with_overrides
from codectk.log import setup_logging, timed
from codectk.phase import resolve_train_config
from codectk.train.distributed import LAUNCHED_ENV, launch_command


def build_parser(required: bool = True):
    """The options of this step; the rest of the command line are config overrides
    (``parse_known_args``). ``required=False`` for checking ``--train_args`` alone."""
    p = parser(__doc__)
    p.add_argument("--config", required=required, help="training YAML")
    p.add_argument("--train_data", required=required, help="dumped training data dir")
    p.add_argument("--valid_data", required=required, help="dumped validation data dir")
    p.add_argument("--output_dir", required=required, help="experiment folder")
    p.add_argument("--ngpu", type=int, default=0, help="0: CPU; N: N GPUs per node (DDP)")
    p.add_argument("--num_nodes", type=int, default=1, help="nodes (SLURM allocation)")
    p.add_argument("--resume", type=str2bool, default=True, help="resume from checkpoint.pt")
    add_num_threads_arg(p, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args, overrides = p.parse_known_args(argv)
    setup_logging()
    set_num_threads(args.num_threads)
    config = load_config_with_overrides(args.config, overrides)
    config = resolve_train_config(config, args.config, Path(args.output_dir).parent)
    cuda = torch.cuda.is_available()
    nproc = max(1, args.ngpu)
    launched = os.environ.get(LAUNCHED_ENV) == "1" or "LOCAL_RANK" in os.environ
    if (nproc > 1 or args.num_nodes > 1) and not launched:
        if args.ngpu > 1 and not cuda:
            logging.getLogger("codectk.train").warning(
                "--ngpu %d but no CUDA device is visible: running %d CPU processes (gloo)",
                args.ngpu,
                nproc,
            )
        argv_all = sys.argv[1:] if argv is None else list(argv)
        cmd = launch_command(argv_all, nproc, args.num_nodes)
        env = {**os.environ, LAUNCHED_ENV: "1"}
        if not cuda:  # share the cores instead of oversubscribing them
            threads = args.num_threads or max(1, (os.cpu_count() or 1) // nproc)
            env["OMP_NUM_THREADS"] = str(threads)
        logging.getLogger("codectk.train").info("launching: %s", " ".join(cmd))
        return subprocess.run(cmd, env=env).returncode
    if args.ngpu == 1 and not cuda:
        p.error("--ngpu 1 but no CUDA device is visible")
    from codectk.train.distributed import cleanup, init_from_env
    from codectk.train.trainer import Trainer

    info, device = init_from_env(use_cuda=args.ngpu > 0 and cuda)
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    if info.distributed and not cuda and args.num_threads <= 0:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    logging.getLogger("codectk.train").info(
        "config %s, overrides %s, device %s, rank %d of %d",
        args.config,
        overrides,
        device,
        info.rank,
        info.world_size,
    )
    try:
        with timed(f"training {args.output_dir}"):
            trainer = Trainer(
                config,
                args.output_dir,
                args.train_data,
                args.valid_data,
                str(device),
                args.resume,
                dist_info=info,
            )
            ave = trainer.run()
    finally:
        cleanup()
    if not info.is_main:
        return 0
    logging.getLogger("codectk.train").info("inference model: %s", ave)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
