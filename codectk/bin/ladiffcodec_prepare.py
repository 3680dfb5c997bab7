"""Prepare LaDiffCodec's diffusion phase from its two finished phases.

Usage::

    python -m codectk.bin.ladiffcodec_prepare --config conf/ladiffcodec_diffusion_16k.yaml \\
        --codec_exp exp/codec_soundstream_16k_tiny --ae_exp exp/codec_ladiffcodec_ae_16k_tiny \\
        --train_data dump/raw/train --out_dir exp/ladiffcodec_prep [--max_utts 100]

Reads the discrete codec (``--codec_exp``: an experiment folder, model file, packed
``.zip`` or converted EnCodec / DAC model file) and the continuous autoencoder
(``--ae_exp``, a ``continuous_ae`` experiment), and writes to ``--out_dir``:

* ``config.yaml``: the ``--config`` training YAML with ``codec_conf.discrete_codec``,
  ``discrete_codec_conf`` and ``ae_conf`` filled in from the two experiments (the
  architecture travels with the phase-3 model) and ``init_from`` set to ``init.pt``;
* ``init.pt``: a model file holding the frozen codec and autoencoder weights and the
  latent scaling statistics fitted on ``--train_data`` (the trainer's ``init_from``
  copies them before step 1; the U-Net starts from the trainer's seed).

Stage 5 then trains ``--train_config <out_dir>/config.yaml``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from codectk.bin.common import parser, run, setup_logging, timed
from codectk.config import build_train_config, load_yaml, save_config
from codectk.data.dataset import UtteranceDataset
from codectk.errors import ConfigError
from codectk.inference import read_model_file
from codectk.models import CODECS
from codectk.models.ladiffcodec import LaDiffCodec
from codectk.train.checkpoint import model_file, save_atomic

log = logging.getLogger("codectk.ladiffcodec_prepare")


def prepare(
    config: str | Path,
    codec_exp: str | Path,
    ae_exp: str | Path,
    train_data: str | Path,
    out_dir: str | Path,
    max_utts: int = 100,
    max_seconds: float = 5.0,
    codec_model_file: str | None = None,
    ae_model_file: str | None = None,
) -> Path:
    """Write ``out_dir/config.yaml`` and ``out_dir/init.pt`` (see the module docstring).

    Args:
        config: the phase-3 training YAML (``codec: ladiffcodec``).
        codec_exp: discrete codec experiment folder, model file or packed zip.
        ae_exp: continuous autoencoder experiment folder, model file or packed zip.
        train_data: dumped training data dir for the scaling statistics.
        out_dir: output folder.
        max_utts (int): training utterances used for the statistics (first ones).
        max_seconds (float): seconds read from each of them.
        codec_model_file, ae_model_file (str | None): model file names inside the folders.

    Returns:
        Path: the written ``config.yaml``.

    Raises:
        ConfigError: a config that is not ``ladiffcodec``, an AE experiment that is not
            ``continuous_ae``, or sample rates that differ.
        CheckpointError: an unreadable experiment.
    """
    out = Path(out_dir)
    data = load_yaml(config)
    if data.get("codec") != "ladiffcodec":
        raise ConfigError(f"{config}: codec must be ladiffcodec, got {data.get('codec')!r}")
    codec_obj, codec_where = read_model_file(codec_exp, codec_model_file)
    ae_obj, ae_where = read_model_file(ae_exp, ae_model_file)
    codec_cfg = build_train_config(codec_obj["config"], where=codec_where)
    ae_cfg = build_train_config(ae_obj["config"], where=ae_where)
    if ae_cfg.codec != "continuous_ae":
        raise ConfigError(f"{ae_where}: expected a continuous_ae experiment, got {ae_cfg.codec}")
    if codec_cfg.codec in ("continuous_ae", "ladiffcodec"):
        raise ConfigError(f"{codec_where}: expected a discrete codec, got {codec_cfg.codec}")
    conf = dict(data.get("codec_conf") or {})
    conf.update(
        discrete_codec=codec_cfg.codec,
        discrete_codec_conf=codec_cfg.codec_conf,
        ae_conf=ae_cfg.codec_conf,
    )
    data["codec_conf"] = conf
    data["init_from"] = str(out / "init.pt")
    train_config = build_train_config(data, where=str(config))  # validates the keys
    codec = CODECS.build("ladiffcodec", conf)
    assert isinstance(codec, LaDiffCodec)
    codec.discrete.load_state_dict(codec_obj["model"])
    codec.ae.load_state_dict(ae_obj["model"])
    codec.eval()
    sr = codec.sample_rate
    utts = UtteranceDataset(train_data, sr, max_samples=round(max_seconds * sr))
    n = min(len(utts), max_utts)

    def latents():
        with torch.inference_mode():
            for i in range(n):
                yield codec.ae.latent(utts[i].wav)  # (1, D, F)

    with timed(f"latent statistics over {n} utterances of {train_data}"):
        codec.fit_scaling_(latents())
    log.info(
        "scaling %s: latent std min %.4f max %.4f, mean |mean| %.4f",
        codec.scaling,
        float(codec.latent_std.min()),
        float(codec.latent_std.max()),
        float(codec.latent_mean.abs().mean()),
    )
    frozen = {
        k: v for k, v in codec.state_dict().items() if not k.startswith("diffusion.denoiser.")
    }
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"codec_exp": codec_where, "ae_exp": ae_where, "stats_utterances": n}
    save_atomic(model_file(train_config.to_dict(), frozen, 0, metrics), out / "init.pt")
    save_config(train_config, out / "config.yaml")
    log.info(
        "wrote %s and %s (%s at %.3f kbps, %d codebooks; AE hop %d, D %d)",
        out / "config.yaml",
        out / "init.pt",
        codec_cfg.codec,
        codec.bitrate(),
        codec.n_codebooks,
        codec.ae.hop_length,
        codec.ae.dimension,
    )
    return out / "config.yaml"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="phase-3 training YAML (codec: ladiffcodec)")
    p.add_argument("--codec_exp", required=True, help="discrete codec: exp folder, .pt or .zip")
    p.add_argument("--codec_model_file", default=None, help="model file inside --codec_exp")
    p.add_argument("--ae_exp", required=True, help="continuous_ae experiment")
    p.add_argument("--ae_model_file", default=None, help="model file inside --ae_exp")
    p.add_argument("--train_data", required=True, help="dumped training data dir")
    p.add_argument("--out_dir", required=True, help="folder for config.yaml and init.pt")
    p.add_argument("--max_utts", type=int, default=100, help="utterances for the statistics")
    p.add_argument("--max_seconds", type=float, default=5.0, help="seconds per utterance")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads (0: default)")
    args = p.parse_args(argv)
    setup_logging()
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
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
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
