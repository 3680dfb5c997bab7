"""Tiny training configs shared by the trainer and stage tests (``make_<model>_conf``),
and the check that an old (version-1) codec_conf builds the codec its new preset builds."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from codectk.config import build_train_config
from codectk.models import CODECS
from codectk.models.soundstream import soundstream_tiny_conf


def assert_version_1_conf_builds(codec: str, flat: dict, new: dict) -> dict:
    """A version-1 (flat) ``codec_conf`` of ``codec``, read through the key map
    (``build_train_config``, as a model file's), builds the codec ``new`` builds: the same
    parameter names, order and values under one seed. Returns the upgraded codec_conf."""
    config = build_train_config({"codec": codec, "codec_conf": flat}, where="model.pt")
    states = []
    for conf in (config.codec_conf, new):
        torch.manual_seed(0)
        states.append(CODECS.build(codec, conf).state_dict())
    assert list(states[0]) == list(states[1])
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    return config.codec_conf


def make_soundstream_conf(**overrides) -> dict:
    """A training config small enough for a few CPU steps per second."""
    conf = {
        "codec": "soundstream",
        "codec_conf": soundstream_tiny_conf(
            encoder=dict(n_filters=4, dimension=16, n_residual_layers=1),
            quantizer=dict(kmeans_iters=2),
        ),
        "discriminator": "combined",
        "discriminator_conf": {
            "discriminators": {
                "msd": {
                    "scales": 1,
                    "channels": 4,
                    "max_channels": 16,
                    "downsample_scales": [4, 4],
                },
                "stft": {"n_fft": 256, "hop_length": 64, "channels": 4},
            }
        },
        "loss_conf": {"weights": {"mel": 1.0, "feat": 10.0}},
        "optim_conf": {"lr": 0.001, "betas": [0.5, 0.9]},
        "optim2_conf": {"lr": 0.001, "betas": [0.5, 0.9]},
        "batch_size": 2,
        "segment_duration": 0.2,
        "max_steps": 6,
        "valid_interval": 3,
        "log_interval": 2,
        "discriminator_start_step": 2,
        "keep_nbest_models": 2,
        "valid_max_duration": 1.0,
    }
    conf.update(overrides)
    return conf


def write_conf(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(make_soundstream_conf(**overrides)))
    return path
