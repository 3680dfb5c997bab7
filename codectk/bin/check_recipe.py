"""Check a recipe's options before any stage runs (codec.sh and the phase drivers call it).

Usage (codec.sh passes its options through)::

    python -m codectk.bin.check_recipe --stage 5 --stop_stage 7 --train_set train \\
        --valid_set valid --test_sets "test" --train_config conf/x.yaml \\
        --train_args "--max_steps 3" --tag x [--codec_exp exp/codec_x] \\
        [--decode_bandwidths "1.5 3"] [--anchors "opus codec2"] ...

    python -m codectk.bin.check_recipe --expdir exp \\
        --phase conf/symAD_16k_tiny.yaml --phase_args="--max_steps 6" \\
        --phase conf/AudioDec_v1_symAD_16k_tiny.yaml

Without ``--phase`` it checks, for the stages that run (``--stage`` .. ``--stop_stage``
less the ``--skip_*`` ones), in this order:

* the options: the set names, the stage range (1 to 10), the files named by
  ``--train_config`` and ``--inference_config``, a ``--codec_exp`` that stage 5 can
  train into (a folder, not a model file);
* the files earlier stages make, where the stage that makes them does not run in this
  call: ``data/<set>/wav.scp`` (stage 1), the dumps (stages 2, 3), the model file
  (stage 5), the decoded sets (stage 6), the packed model (stage 8);
* the model options, read and built as the stages will: the training config with its
  overrides and ``${exp:NAME}`` references (:mod:`codectk.phase`), each
  ``--decode_bandwidths`` target on the codec's ladder (rounded down with a note), the
  ``--anchors`` names and their tools.

With ``--phase CONFIG`` (repeated, in training order; each optionally followed by
``--phase_args=TRAIN_ARGS``, its overrides) it checks a chain of phases instead: each
config with its overrides, and each reference naming an earlier phase (its file name)
or an experiment already in ``--expdir``. Write ``--opt=value`` for the options whose
value may begin with ``--`` (``--train_args``, ``--phase_args``).

The first problem is one ``ERROR:`` line naming the option, the file and the stage that
makes it; the exit status is then 1 (codec.sh turns it into 2).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from codectk.bin.common import parser, run, str2bool
from codectk.log import setup_logging
from codectk.recipe_check import Recipe, check_phases


def build_parser():
    p = parser(__doc__)
    a = p.add_argument
    a("--stage", default="1", help="first stage")
    a("--stop_stage", default="10", help="last stage")
    for name in ("skip_data_prep", "skip_train", "skip_eval", "skip_packing"):
        a(f"--{name}", type=str2bool, default=False, help="as codec.sh's")
    a("--train_set", default="", help="training set name")
    a("--valid_set", default="", help="validation set name")
    a("--test_sets", default="", help="space-separated evaluation sets")
    a("--token_sets", default="", help="stage 10 sets (default: all of the above)")
    a("--dumpdir", default="dump", help="dumped data")
    a("--expdir", default="exp", help="experiments")
    a("--train_config", default="", help="training YAML")
    a("--train_args", default="", help="its overrides, one string")
    a("--tag", default="", help="experiment name (codec.sh's, after its defaults)")
    a("--codec_exp", default="", help="codec.sh --codec_exp as given (folder, model file, .zip)")
    a("--inference_config", default="", help="decoding YAML")
    a("--inference_model", default="valid.mel_distance.ave.pt", help="model file in the folder")
    a("--inference_tag", default="", help="suffix of decode/score folders")
    a("--decode_bandwidths", default="", help="space-separated target kbps")
    a("--anchors", default="", help="space or comma list of anchors")
    a("--hf_repo", default="", help="stage 9 repository")
    a("--phase", action="append", default=[], help="a config of a chain (repeat, in order)")
    a("--phase_args", action=PhaseArgs, help="the --train_args of the --phase before it")
    return p


class PhaseArgs(argparse.Action):
    """``--phase_args`` belongs to the ``--phase`` given just before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        if not namespace.phase:
            parser.error("--phase_args must follow the --phase it belongs to")
        args = dict(getattr(namespace, self.dest) or {})
        args[len(namespace.phase) - 1] = values
        setattr(namespace, self.dest, args)


def train_overrides(train_args: str) -> list[str]:
    """The config overrides of a ``--train_args`` string: what the training step's own
    parser (:func:`codectk.bin.train.build_parser`) does not know."""
    from codectk.bin.train import build_parser as train_parser

    _, overrides = train_parser(required=False).parse_known_args(shlex.split(train_args))
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.phase:
        phase_args = args.phase_args or {}
        phases = [[c, phase_args.get(i, "")] for i, c in enumerate(args.phase)]
        check_phases(phases, args.expdir, train_overrides)
        return 0
    recipe = Recipe(args, train_overrides)
    recipe.options()
    recipe.files()
    recipe.model()
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
