"""A dumped data dir and a tiny training config shared by the trainer and stage tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codectk.bin import dump_wav
from codectk.datadir import read_scp, subset_data_dir
from codectk.models.soundstream import soundstream_tiny_conf
from test.conftest import bundled_flacs


def make_soundstream_conf(**overrides) -> dict:
    """A training config small enough for a few CPU steps per second."""
    conf = {
        "codec": "soundstream",
        "codec_conf": soundstream_tiny_conf(
            n_filters=4, dimension=16, n_residual_layers=1, kmeans_iters=2
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
        "loss_conf": {"lambda_mel": 1.0, "lambda_feat": 10.0},
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


@pytest.fixture(scope="session")
def dumped(tmp_path_factory) -> dict[str, Path]:
    """dump/raw/{train,valid} from 6 + 2 bundled utterances at 16 kHz."""
    root = tmp_path_factory.mktemp("dump")
    files = bundled_flacs()[:8]
    src = root / "src"
    src.mkdir()
    (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in files))
    (src / "utt2spk").write_text("".join(f"{f.stem} {f.stem.split('-')[0]}\n" for f in files))
    dump_wav.main(
        [
            "--fs",
            "16000",
            "--in_scp",
            str(src / "wav.scp"),
            "--out_wav_dir",
            str(root / "data"),
            "--out_dir",
            str(src),
        ]
    )
    utts = list(read_scp(src / "wav.scp"))
    out = {}
    for name, sub in (("train", utts[:6]), ("valid", utts[6:])):
        subset_data_dir(src, root / name, sub)
        (root / name / "fs").write_text("16000\n")
        out[name] = root / name
    return out
