"""The bundled recipe end to end (stages 1-8) on real speech, in a copy of the recipe."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from codectk.io.datadir import read_scp, validate_data_dir
from test.conftest import CORPUS, REPO
from test.recipe.copy import copy_recipe

pytestmark = pytest.mark.recipe
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
TRAIN_ARGS = "--max_steps 40 --valid_interval 20 --log_interval 10 --discriminator_start_step 20"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("recipe") / "codec1"
    copy_recipe(d)
    return d


def run(recipe: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
    proc = subprocess.run(
        ["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1200
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"run.sh {args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def test_stages_1_to_8(recipe: Path):
    proc = run(recipe, "--train_args", TRAIN_ARGS)
    out = proc.stdout
    for stage in range(1, 9):
        assert f"Stage {stage}:" in out, f"stage {stage} did not run"
    for name in ("train", "valid", "test"):
        assert validate_data_dir(recipe / "dump" / "raw" / name) == []
    assert len(read_scp(recipe / "dump/raw/test/wav.scp")) == 6
    exp = (
        recipe
        / "exp"
        / f"codec_soundstream_16k_tiny{TRAIN_ARGS.replace('--', '_').replace(' ', '')}"
    )
    for name in (
        "config.yaml",
        "train.log",
        "checkpoint.pt",
        "valid.mel_distance.ave.pt",
        "images/mel_distance.png",
    ):
        assert (exp / name).exists(), name
    decoded = read_scp(exp / "decode_test" / "wav.scp")
    assert set(decoded) == set(read_scp(recipe / "dump/raw/test/wav.scp"))
    summary = json.loads((exp / "scores/test/summary.json").read_text())
    for metric in ("pesq", "stoi", "estoi", "mel_distance", "stft_distance", "si_sdr"):
        assert summary[metric]["n"] == 6, metric
    assert summary["bitrate_kbps"] == pytest.approx(1.6)
    assert "codebook_usage" in summary
    packed = exp / "packed" / f"{exp.name}.zip"
    with zipfile.ZipFile(packed) as zf:
        assert {"config.yaml", "model.pt", "README.md", "meta.json"} <= set(zf.namelist())
    import codectk

    codec = codectk.load_codec(packed)
    assert codec.sample_rate == 16000

    # bfloat16 inference (opt-in, lossy) decodes into its own folders and stays near
    # float32 (measured on the demo's model: mel distance +14%, PESQ -0.2%).
    run(
        recipe,
        "--stage",
        "6",
        "--stop_stage",
        "7",
        "--train_args",
        TRAIN_ARGS,
        "--inference_args",
        "--precision bf16",
        "--inference_tag",
        "bf16",
    )
    bf16 = json.loads((exp / "scores/test_bf16/summary.json").read_text())
    assert bf16["mel_distance"]["n"] == 6
    assert bf16["mel_distance"]["mean"] <= 1.3 * summary["mel_distance"]["mean"], (bf16, summary)
    assert abs(bf16["pesq"]["mean"] - summary["pesq"]["mean"]) <= 0.1, (bf16, summary)

    # Idempotent: stage 2 again leaves the dump as it was.
    before = (recipe / "dump/raw/test/wav.scp").read_text()
    run(recipe, "--stage", "2", "--stop_stage", "2")
    assert (recipe / "dump/raw/test/wav.scp").read_text() == before

    # The untrained model of the same config, scored on the same speakers, is worse.
    run(
        recipe,
        "--stage",
        "5",
        "--stop_stage",
        "7",
        "--tag",
        "untrained",
        "--train_args",
        "--max_steps 0",
    )
    cmp = subprocess.run(
        [
            str(REPO / "tools/venv/bin/python"),
            "-m",
            "codectk.bin.compare_scores",
            str(exp / "scores/test"),
            str(recipe / "exp/codec_untrained/scores/test"),
            "--names",
            "trained",
            "untrained",
            "--require_better",
            "mel_distance",
        ],
        capture_output=True,
        text=True,
    )
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr


def test_ddp_two_processes_train_decode_and_score(recipe: Path):
    """``--ngpu 2`` on a machine without CUDA: 2 CPU processes (gloo) under torchrun."""
    if not (recipe / "dump/raw/train/wav.scp").exists():
        run(recipe, "--stage", "1", "--stop_stage", "4")
    run(
        recipe,
        "--stage",
        "5",
        "--stop_stage",
        "7",
        "--ngpu",
        "2",
        "--tag",
        "ddp",
        "--train_args",
        "--max_steps 6 --valid_interval 6 --log_interval 3 --discriminator_start_step 3 "
        "--batch_size 4",
    )
    exp = recipe / "exp" / "codec_ddp"
    log = (exp / "train.log").read_text()
    assert "torch.distributed.run --nproc_per_node 2 --standalone" in log
    assert "global batch 4 = 2 rank(s) x 1 micro-batch(es) x 2" in log
    assert "rank 0 of 2" in log
    summary = json.loads((exp / "scores/test/summary.json").read_text())
    assert summary["mel_distance"]["n"] == 6 and summary["mel_distance"]["n_nan"] == 0


def test_bad_options_exit_2(recipe: Path):
    proc = run(recipe, "--no_such_option", "1", check=False)
    assert proc.returncode == 2
    proc = run(recipe, "--stage", "5", "--train_config", "conf/missing.yaml", check=False)
    assert proc.returncode == 2 and "no such file" in proc.stdout + proc.stderr
