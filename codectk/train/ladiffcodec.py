"""LaDiffCodec's diffusion phase (phase 3), prepared from its two finished phases: the
discrete codec (phase 1) and the continuous autoencoder (phase 2).

The phase-3 YAML names its predecessors in ``phase_inputs`` (:mod:`codectk.phase`)::

    phase_inputs:
      discrete_codec: ${exp:soundstream_16k_tiny}     # phase 1: <expdir>/codec_<name>
      autoencoder: ${exp:ladiffcodec_ae_16k_tiny}     # phase 2

:func:`prepare` writes to its ``out_dir``:

* ``config.yaml``: the training YAML with ``codec_conf.discrete_codec``,
  ``discrete_codec_conf`` and ``ae_conf`` filled in from the two experiments (the
  architecture travels with the phase-3 model), ``init_from`` set to ``init.pt`` and
  ``phase_inputs`` emptied;
* ``init.pt``: a model file holding the frozen codec and autoencoder weights and the
  latent scaling statistics fitted on the training data (the trainer's ``init_from``
  copies them before step 1; the U-Net starts from the trainer's seed);
* ``phase_inputs``: ``<role> <path>`` lines, the two experiments read.

Stage 5 then trains ``<out_dir>/config.yaml``. The command line is
``python -m codectk.bin.ladiffcodec_prepare``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from codectk.config import build_train_config, load_yaml, save_config
from codectk.data.dataset import UtteranceDataset
from codectk.errors import ConfigError
from codectk.io.fileio import atomic_write
from codectk.io.modelfile import model_file, read_model_file, save_atomic
from codectk.log import timed
from codectk.models import CODECS
from codectk.models.ladiffcodec import LaDiffCodec
from codectk.phase import check_phase_inputs, resolve_references

log = logging.getLogger("codectk.ladiffcodec_prepare")


def prepare(
    config: str | Path,
    codec_exp: str | Path | None,
    ae_exp: str | Path | None,
    train_data: str | Path,
    out_dir: str | Path,
    max_utts: int = 100,
    max_seconds: float = 5.0,
    codec_model_file: str | None = None,
    ae_model_file: str | None = None,
    expdir: str | Path | None = None,
) -> Path:
    """Write ``out_dir/config.yaml``, ``init.pt`` and ``phase_inputs`` (see the module
    docstring; ``python -m codectk.bin.ladiffcodec_prepare`` is its command line).

    Args:
        config: the phase-3 training YAML (``codec: ladiffcodec``).
        codec_exp: discrete codec experiment folder, model file or packed zip (None:
            the config's ``phase_inputs.discrete_codec``).
        ae_exp: continuous autoencoder experiment folder, model file or packed zip
            (None: the config's ``phase_inputs.autoencoder``).
        train_data: dumped training data dir for the scaling statistics.
        out_dir: output folder.
        max_utts (int): training utterances used for the statistics (first ones).
        max_seconds (float): seconds read from each of them.
        codec_model_file, ae_model_file (str | None): model file names inside the folders.
        expdir: the folder ``${exp:NAME}`` references resolve against (None: the
            parent of ``out_dir``).

    Returns:
        Path: the written ``config.yaml``.

    Raises:
        ConfigError: a config that is not ``ladiffcodec``, a predecessor neither given
            nor named in ``phase_inputs`` (or named there but missing), an AE experiment
            that is not ``continuous_ae``, or sample rates that differ.
        CheckpointError: an unreadable experiment.
    """
    out = Path(out_dir)
    data = load_yaml(config)
    if data.get("codec") != "ladiffcodec":
        raise ConfigError(f"{config}: codec must be ladiffcodec, got {data.get('codec')!r}")
    check_phase_inputs(data, str(config))
    inputs = dict(data.pop("phase_inputs", None) or {})
    for role, given, option in (
        ("discrete_codec", codec_exp, "--codec_exp"),
        ("autoencoder", ae_exp, "--ae_exp"),
    ):
        if given is not None:
            inputs[role] = str(given)
        elif role not in inputs:
            raise ConfigError(
                f"{config}: no phase_inputs.{role} (the {role} experiment); name it there "
                f"(${{exp:<name>}}) or give {option}"
            )
    inputs = resolve_references(
        inputs, out.parent if expdir is None else expdir, f"{config} phase_inputs"
    )
    codec_exp, ae_exp = inputs["discrete_codec"], inputs["autoencoder"]
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
    with atomic_write(out / "phase_inputs") as f:
        f.write(f"discrete_codec {codec_exp}\nautoencoder {ae_exp}\n")
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
