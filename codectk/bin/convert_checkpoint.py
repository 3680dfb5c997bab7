"""Import the authors' released EnCodec or DAC weights as a codectk model file.

Usage::

    codectk convert --list                    # released models, their configs and URLs
    codectk convert --name encodec_24khz --checkpoint encodec_24khz-d7cc33bc.th \\
        --out exp/codec_encodec_24khz/model.pt
    codectk convert --name dac_44khz --checkpoint weights.pth --out exp/dac_44khz/model.pt
    # any config of the family, named explicitly:
    codectk convert --family dac --checkpoint weights_44khz_8kbps_0.0.1.pth \\
        --config conf/dac_44k_8kbps.yaml --out exp/codec_dac_44k_released/model.pt

(``python -m codectk.bin.convert_checkpoint`` is the same command.) The weights file is
one the user downloaded (docs/pretrained.md names where; nothing is downloaded). Any
further ``--key value`` overrides the config as in training. The output is a codectk
model file (format ``codectk-model``, the resolved config inside) that
``codectk.load_codec(<out>)`` and the recipe's ``--codec_exp`` / decoding read; keys,
shapes and the file's own metadata are checked against the config (see
:mod:`codectk.convert`).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.config import load_train_config
from codectk.convert import CONVERTERS, convert_checkpoint
from codectk.convert.released import RELEASED, released, released_config
from codectk.errors import ConfigError
from codectk.io.modelfile import model_file, save_atomic
from codectk.log import setup_logging

log = logging.getLogger("codectk")


def list_released() -> str:
    """The released models: name, codectk config, address of the weights."""
    lines = []
    for name, entry in RELEASED.items():
        config = " ".join(["conf/" + entry.config, *entry.overrides])
        lines += [f"{name}: {entry.about}", f"    config {config}", f"    weights {entry.url}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.prog = "codectk convert"
    p.add_argument("--list", action="store_true", help="list the released models and exit")
    p.add_argument(
        "--name", choices=sorted(RELEASED), help="a released model (sets family and config)"
    )
    p.add_argument("--family", choices=CONVERTERS.names(), help="converter, with --config")
    p.add_argument("--config", help="codectk training config of the model, with --family")
    p.add_argument("--checkpoint", help="the authors' weights file")
    p.add_argument("--out", help="codectk model file to write (.pt)")
    args, overrides = p.parse_known_args(argv)
    setup_logging()
    if args.list:
        print(list_released())
        return 0
    if not args.checkpoint or not args.out:
        p.error("--checkpoint and --out are required (or --list)")
    if args.name and (args.family or args.config):
        p.error("give --name, or --family with --config, not both")
    if args.name:
        family, config = released(args.name).family, released_config(args.name, overrides)
    elif args.family and args.config:
        family, config = args.family, load_train_config(args.config, overrides)
    else:
        p.error("give --name (one of the released models) or --family with --config")
    if not Path(args.checkpoint).is_file():
        hint = f"; download it from {released(args.name).url}" if args.name else ""
        raise ConfigError(f"--checkpoint {args.checkpoint}: no such file{hint}")
    codec = convert_checkpoint(family, args.checkpoint, config)
    digest = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()
    metrics = {"converted_from": Path(args.checkpoint).name, "sha256": digest}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_atomic(model_file(config.to_dict(), codec.state_dict(), 0, metrics), args.out)
    n_params = sum(x.numel() for x in codec.parameters())
    log.info(
        "wrote %s: %s from %s (%.3f M parameters, %d Hz, %d codebooks, %s kbps)",
        args.out,
        config.codec,
        args.checkpoint,
        n_params / 1e6,
        codec.sample_rate,
        codec.n_codebooks,
        "/".join(f"{b:g}" for b in codec.bandwidths),
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
