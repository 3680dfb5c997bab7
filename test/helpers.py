"""Tiny training configs shared by the trainer and stage tests (``make_<model>_conf``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from codectk.models.soundstream import soundstream_tiny_conf


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
