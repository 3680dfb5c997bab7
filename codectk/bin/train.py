"""Stage 5: train a codec.

Usage::

    python -m codectk.bin.train --config conf/soundstream_16k_tiny.yaml \\
        --train_data dump/raw/train --valid_data dump/raw/valid \\
        --output_dir exp/codec_soundstream_16k_tiny [--ngpu 0] [--resume true] \\
        [--max_steps 200 --codec_conf.n_filters 16 ...]

Options after the known ones override config keys (dotted for nested keys). A re-run
resumes from ``<output_dir>/checkpoint.pt``; a finished run only re-averages.
"""

from __future__ import annotations

import logging
import sys

import torch

from codectk.bin.common import parser, run, setup_logging, str2bool, timed
from codectk.config import load_train_config


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="training YAML")
    p.add_argument("--train_data", required=True, help="dumped training data dir")
    p.add_argument("--valid_data", required=True, help="dumped validation data dir")
    p.add_argument("--output_dir", required=True, help="experiment folder")
    p.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: one GPU")
    p.add_argument("--resume", type=str2bool, default=True, help="resume from checkpoint.pt")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: default)")
    args, overrides = p.parse_known_args(argv)
    setup_logging()
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    config = load_train_config(args.config, overrides)
    if args.ngpu > 1:
        p.error("--ngpu > 1 needs distributed training, which this version does not have yet")
    if args.ngpu == 1 and not torch.cuda.is_available():
        p.error("--ngpu 1 but no CUDA device is visible")
    device = "cuda" if args.ngpu == 1 else "cpu"
    from codectk.train.trainer import Trainer

    logging.getLogger("codectk.train").info(
        "config %s, overrides %s, device %s", args.config, overrides, device
    )
    with timed(f"training {args.output_dir}"):
        trainer = Trainer(
            config, args.output_dir, args.train_data, args.valid_data, device, args.resume
        )
        ave = trainer.run()
    logging.getLogger("codectk.train").info("inference model: %s", ave)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
