"""Prepare LaDiffCodec's diffusion phase from its two finished phases.

Usage::

    python -m codectk.bin.ladiffcodec_prepare --config conf/ladiffcodec_diffusion_16k.yaml \
        --train_data dump/raw/train --out_dir exp/ladiffcodec_prep [--expdir exp] \
        [--codec_exp exp/dac_16khz/model.pt] [--ae_exp exp/codec_ae] [--max_utts 100]

The phase-3 YAML names its predecessors in ``phase_inputs`` (:mod:`codectk.phase`)::

    phase_inputs:
      discrete_codec: ${exp:soundstream_16k_tiny}     # phase 1: <expdir>/codec_<name>
      autoencoder: ${exp:ladiffcodec_ae_16k_tiny}     # phase 2

``--codec_exp`` / ``--ae_exp`` replace them (an experiment folder, model file, packed
``.zip`` or converted EnCodec / DAC model file; the autoencoder a ``continuous_ae``
experiment). ``--expdir`` resolves ``${exp:NAME}`` (default: the parent of
``--out_dir``). Writes to ``--out_dir``:

* ``config.yaml``: the ``--config`` training YAML with ``codec_conf.discrete_codec``,
  ``discrete_codec_conf`` and ``ae_conf`` filled in from the two experiments (the
  architecture travels with the phase-3 model), ``init_from`` set to ``init.pt`` and
  ``phase_inputs`` emptied;
* ``init.pt``: a model file holding the frozen codec and autoencoder weights and the
  latent scaling statistics fitted on ``--train_data`` (the trainer's ``init_from``
  copies them before step 1; the U-Net starts from the trainer's seed);
* ``phase_inputs``: ``<role> <path>`` lines, the two experiments read (the recipe
  decodes the same discrete codec on its own next to the diffusion model).

Stage 5 then trains ``--train_config <out_dir>/config.yaml``.
"""

from __future__ import annotations

import sys

from codectk.bin.common import add_num_threads_arg, parser, run, set_num_threads
from codectk.log import setup_logging
from codectk.train.ladiffcodec import prepare


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="phase-3 training YAML (codec: ladiffcodec)")
    p.add_argument(
        "--codec_exp", default=None, help="discrete codec (default: phase_inputs.discrete_codec)"
    )
    p.add_argument("--codec_model_file", default=None, help="model file inside --codec_exp")
    p.add_argument(
        "--ae_exp",
        default=None,
        help="continuous_ae experiment (default: phase_inputs.autoencoder)",
    )
    p.add_argument("--ae_model_file", default=None, help="model file inside --ae_exp")
    p.add_argument("--train_data", required=True, help="dumped training data dir")
    p.add_argument("--out_dir", required=True, help="folder for config.yaml and init.pt")
    p.add_argument("--expdir", default=None, help="experiments folder (default: out_dir's parent)")
    p.add_argument("--max_utts", type=int, default=100, help="utterances for the statistics")
    p.add_argument("--max_seconds", type=float, default=5.0, help="seconds per utterance")
    add_num_threads_arg(p)
    args = p.parse_args(argv)
    setup_logging()
    set_num_threads(args.num_threads)
    prepare(
        args.config,
        args.codec_exp,
        args.ae_exp,
        args.train_data,
        args.out_dir,
        args.max_utts,
        args.max_seconds,
        args.codec_model_file,
        args.ae_model_file,
        args.expdir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
