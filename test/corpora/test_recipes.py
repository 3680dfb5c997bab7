"""The LibriSpeech, LibriTTS and VCTK recipes on fixture corpora, in copies of the recipes:
stages 1-3 for each (validated data dirs with the right counts, no network), and
stages 5-7 with a tiny model on LibriSpeech."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from codectk.io.datadir import read_scp, validate_data_dir
from test.corpora.builders import REPO, build_librispeech, build_libritts, build_vctk

pytestmark = pytest.mark.recipe
TINY = (  # a model small enough for a few CPU steps per second
    "--max_steps 4 --valid_interval 2 --log_interval 2 --discriminator_start_step 2 "
    "--batch_size 2 --segment_duration 0.2 --valid_max_duration 1.0 "
    "--codec_conf.encoder.n_filters 4 --codec_conf.encoder.dimension 16 "
    "--codec_conf.encoder.n_residual_layers 1 --codec_conf.quantizer.kmeans_iters 2 "
    "--discriminator_conf.discriminators.msd.scales 1 "
    "--discriminator_conf.discriminators.msd.channels 4 "
    "--discriminator_conf.discriminators.msd.max_channels 16 "
    "--discriminator_conf.discriminators.stft.channels 4 "
    "--discriminator_conf.discriminators.stft.n_fft 256 "
    "--discriminator_conf.discriminators.stft.hop_length 64"
)


def copy_recipe(name: str, dest: Path) -> Path:
    """A copy of ``egs/<name>/codec1`` in ``dest`` whose codec.sh and utils link to the repo."""
    src = REPO / "egs" / name / "codec1"
    d = dest / name / "codec1"
    d.mkdir(parents=True)
    for f in src.iterdir():
        if f.name in ("codec.sh", "utils", "data", "dump", "exp", "downloads"):
            continue
        if f.is_dir():
            shutil.copytree(f, d / f.name)  # follows the conf/ links to shared configs
        else:
            shutil.copy(f, d / f.name)
    (d / "codec.sh").symlink_to(REPO / "egs" / "TEMPLATE" / "codec1" / "codec.sh")
    (d / "utils").symlink_to(REPO / "utils")
    return d


def run(recipe: Path, script: str, env: dict[str, str], *args: str) -> str:
    """Run ``./<script> args`` with no network (a dead proxy); return stdout + stderr."""
    dead = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "MAIN_ROOT": str(REPO),
        "OMP_NUM_THREADS": "1",  # on a few shared cores, torch's thread pool only contends
        "http_proxy": dead,
        "https_proxy": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        **env,
    }
    proc = subprocess.run(
        [f"./{script}", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} {args} failed ({proc.returncode}):\n{out[-4000:]}"
    return out


def counts(d: Path) -> tuple[int, int]:
    assert validate_data_dir(d) == [], validate_data_dir(d)
    utt2spk = read_scp(d / "utt2spk")
    return len(utt2spk), len(set(utt2spk.values()))


def test_librispeech_stages_1_to_3_then_5_to_7(tmp_path: Path):
    corpus = build_librispeech(
        tmp_path / "corpora",
        {"train-clean-100": ["26", "39", "103", "2691"], "dev-clean": ["40"], "test-clean": ["27"]},
    )
    recipe = copy_recipe("librispeech", tmp_path)
    env = {"LIBRISPEECH": str(corpus.parent)}
    out = run(recipe, "run.sh", env, "--stage", "1", "--stop_stage", "3", "--nj", "1")
    assert "downloading" not in out
    assert counts(recipe / "data" / "train-clean-100") == (8, 4)
    assert counts(recipe / "data" / "dev-clean") == (2, 1)
    assert counts(recipe / "data" / "test-clean") == (2, 1)
    assert read_scp(recipe / "data" / "dev-clean" / "spk2gender") == {"40": "f"}
    for name in ("train-clean-100", "dev-clean"):
        assert counts(recipe / "dump" / "raw" / name) == counts(recipe / "data" / name)
    assert (recipe / "dump" / "raw" / "test-clean" / "fs").read_text().strip() == "16000"

    out = run(
        recipe,
        "run.sh",
        env,
        *("--stage", "5", "--stop_stage", "7", "--inference_nj", "1"),
        *("--train_config", "conf/soundstream_16k_tiny.yaml", "--tag", "tiny"),
        *("--train_args", TINY),
    )
    exp = recipe / "exp" / "codec_tiny"
    assert (exp / "valid.mel_distance.ave.pt").exists()
    assert set(read_scp(exp / "decode_test-clean" / "wav.scp")) == set(
        read_scp(recipe / "data" / "test-clean" / "wav.scp")
    )
    summary = json.loads((exp / "scores" / "test-clean" / "summary.json").read_text())
    assert summary["mel_distance"]["n"] == 2


def test_libritts_stages_1_to_3(tmp_path: Path):
    corpus = build_libritts(
        tmp_path / "corpora",
        {"train-clean-100": ["200", "2007", "39"], "dev-clean": ["40"], "test-clean": ["27"]},
    )
    recipe = copy_recipe("libritts", tmp_path)
    out = run(
        recipe,
        "run.sh",
        {"LIBRITTS": str(corpus.parent)},
        *("--stage", "1", "--stop_stage", "3", "--nj", "1"),
    )
    assert "downloading" not in out
    assert counts(recipe / "data" / "train-clean-100") == (6, 3)
    assert counts(recipe / "data" / "dev-clean") == (2, 1)
    assert counts(recipe / "data" / "test-clean") == (2, 1)
    wav = read_scp(recipe / "dump" / "raw" / "train-clean-100" / "wav.scp")
    assert "2007-132570-000003-000000" in wav
    assert sf.info(next(iter(wav.values()))).samplerate == 24000


def test_vctk_16k_stages_1_to_3(tmp_path: Path):
    corpus = build_vctk(tmp_path / "corpora")
    recipe = copy_recipe("vctk", tmp_path)
    out = run(
        recipe,
        "run_16k.sh",
        {"VCTK": str(corpus)},
        "--stage",
        "1",
        "--stop_stage",
        "3",
        "--nj",
        "1",
    )
    assert "downloading" not in out.lower()
    # 8 speakers x 2 utterances, mic1; p315 without text and p280 without mic2 included.
    assert counts(recipe / "data" / "all") == (16, 8)
    assert counts(recipe / "data" / "test") == (4, 2)
    assert counts(recipe / "data" / "valid") == (4, 2)
    assert counts(recipe / "data" / "train") == (8, 4)
    test_wav = read_scp(recipe / "dump_16k" / "raw" / "test" / "wav.scp")
    assert sorted(test_wav) == ["p361_001_mic1", "p361_002_mic1", "p376_001_mic1", "p376_002_mic1"]
    assert sf.info(test_wav["p361_001_mic1"]).samplerate == 16000
    assert counts(recipe / "dump_16k" / "raw" / "train") == (8, 4)
