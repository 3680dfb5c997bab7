"""Check a recipe's model options before any stage runs (codec.sh calls it first).

Usage::

    python -m codectk.bin.check_recipe --train_config conf/x.yaml --train_args "--max_steps 3" \\
        [--model exp/codec_x --model_file valid.mel_distance.ave.pt] \\
        [--bandwidths "1.5 3"] [--anchors "opus codec2"]

* ``--train_config`` with ``--train_args``: the config and its overrides are read and
  the codec is built, so that a misspelt key or value stops the recipe before stage 1
  with the message training would give (naming the file or the overrides).
* ``--bandwidths``: each target bitrate is rounded down on the codec's ladder (a note
  names the bitrate used); one below the lowest is an error listing the ladder. The
  codec is ``--model`` when given (an existing experiment), else the config's.
* ``--anchors``: known names whose tools are installed.

Prints one line describing the codec; exits 1 with one ERROR line on a problem.
"""

from __future__ import annotations

import logging
import shlex
import sys

from codectk.bin.common import load_config_with_overrides, parser, run, setup_logging
from codectk.errors import ConfigError

log = logging.getLogger("codectk.check_recipe")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--train_config", default=None, help="training YAML")
    p.add_argument("--train_args", default="", help="its overrides, one string")
    p.add_argument("--model", default=None, help="experiment folder or model file")
    p.add_argument("--model_file", default=None, help="model file inside --model")
    p.add_argument("--bandwidths", default="", help="space-separated target kbps")
    p.add_argument("--anchors", default="", help="space or comma list of anchors")
    args = p.parse_args(argv)
    setup_logging()
    codec = None
    if args.train_config:
        from codectk.bin.train import build_parser
        from codectk.models import CODECS

        # --train_args holds the training step's own options (--num_threads, --ngpu) too
        _, overrides = build_parser(required=False).parse_known_args(shlex.split(args.train_args))
        config = load_config_with_overrides(args.train_config, overrides, "--train_args")
        try:
            codec = CODECS.build(config.codec, config.codec_conf)
        except ValueError as exc:
            where = f"{args.train_config} {args.train_args}".strip()
            raise ConfigError(f"{where}: cannot build the {config.codec} codec: {exc}") from None
    if args.model:
        from codectk.inference import load_codec

        codec = load_codec(args.model, args.model_file)
    if codec is not None:
        log.info(
            "%s: %s, %.3f M parameters, %d Hz, bitrates %s kbps",
            args.model or args.train_config,
            type(codec).__name__,
            sum(x.numel() for x in codec.parameters()) / 1e6,
            codec.sample_rate,
            [round(b, 3) for b in codec.bandwidths],
        )
    targets = args.bandwidths.split()
    if targets and codec is None:
        p.error("--bandwidths needs --train_config or --model")
    for text in targets:
        try:
            kbps = float(text)
        except ValueError:
            raise ConfigError(f"--decode_bandwidths: {text!r} is not a number (kbps)") from None
        codec.resolve_bandwidth(kbps)
    for name in args.anchors.replace(",", " ").split():
        from codectk.anchors import get_anchor

        try:
            anchor = get_anchor(name)
        except ValueError as exc:
            raise ConfigError(f"--anchors: {exc}") from None
        anchor.check_tools()
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
