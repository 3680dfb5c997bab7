"""Stage 9: prepare a Hugging Face model repository folder and upload it.

Usage::

    python -m codectk.bin.upload --exp_dir exp/codec_x --packed exp/codec_x/packed/codec_x.zip \\
        --repo_id user/codec_x --out_dir exp/codec_x/hf_repo \\
        [--train_data dump/raw/train --valid_data dump/raw/valid] \\
        [--report_dir exp/codec_x/report] [--license cc-by-4.0] [--private false]

Writes ``out_dir``: ``README.md`` (model card: YAML front matter, model facts, how to
load it, training data from the data dirs, the config, score tables, plots),
``config.yaml``, the packed model, ``scores/<set>/summary.{txt,json}``, ``plots/*.png``
(rate-distortion plots of the report and training curves). Then uploads the folder
with ``huggingface_hub`` when the environment holds a token (``HF_TOKEN``).

Exit status: 0 when the folder is written and uploaded, and also when no token is
set (the folder is written, a message says how to upload it later: nothing was asked
that could not be done); 3 when a token is set but the upload fails (offline,
``HF_HUB_OFFLINE=1``, network or permission error; the folder is kept); 1 on bad
input (a missing experiment or packed model).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from codectk.bin.common import parser, run, str2bool
from codectk.hub import push, write_repo_folder
from codectk.log import setup_logging
from codectk.version import __version__

log = logging.getLogger("codectk.bin.upload")
EXIT_UPLOAD_FAILED = 3


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--packed", required=True, help="stage-8 archive")
    p.add_argument("--repo_id", required=True, help="user/name on the Hugging Face Hub")
    p.add_argument("--out_dir", required=True, help="repository folder to write")
    p.add_argument("--train_data", default=None, help="training data dir (described in the card)")
    p.add_argument("--valid_data", default=None, help="validation data dir")
    p.add_argument("--report_dir", default=None, help="report folder (codectk.bin.report)")
    p.add_argument("--license", default="other", help="license id for the card (default: other)")
    p.add_argument("--private", type=str2bool, default=False, help="create a private repository")
    args = p.parse_args(argv)
    setup_logging()
    if "/" not in args.repo_id:
        p.error(f"--repo_id {args.repo_id!r}: expected user/name")
    out = write_repo_folder(
        args.repo_id,
        args.exp_dir,
        args.packed,
        args.out_dir,
        args.train_data,
        args.valid_data,
        args.report_dir,
        args.license,
    )
    exp = Path(args.exp_dir)
    token = os.environ.get("HF_TOKEN")
    if not token:
        log.info(
            "not uploaded: HF_TOKEN is not set. The repository folder is ready: %s. Upload it "
            "with HF_TOKEN=... and this stage again, or `hf upload %s %s`",
            out,
            args.repo_id,
            out,
        )
        return 0
    try:
        info = push(out, args.repo_id, token, args.private, f"codectk {__version__}: {exp.name}")
    except Exception as exc:  # offline, network, HTTP and permission errors alike
        log.error(
            "upload to %s failed: %s: %s. The folder is kept at %s; run stage 9 again when "
            "the network (or the token) is fixed",
            args.repo_id,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            out,
        )
        return EXIT_UPLOAD_FAILED
    log.info(
        "uploaded %s to https://huggingface.co/%s (%s)",
        out,
        args.repo_id,
        getattr(info, "commit_url", info),
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
