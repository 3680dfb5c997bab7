"""LaDiffCodec's three-phase chain (run_ladiffcodec.sh) end to end at tiny size on the
bundled corpus: codec, continuous AE, prepare, diffusion (train, decode, score, pack),
the plain codec at the same bitrate, and the side-by-side table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import codectk
from codectk.io.datadir import read_scp
from test.conftest import CORPUS, REPO
from test.recipe.copy import copy_recipe
from test.recipe.sets import rename_sets

pytestmark = pytest.mark.recipe
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
FAST = "--max_steps 2 --valid_interval 2 --log_interval 1 --batch_size 2 --valid_max_duration 1.0 --num_threads 1"


def test_three_phase_chain_side_by_side(tmp_path: Path):
    d = tmp_path / "codec1"
    copy_recipe(d, scripts=["run_ladiffcodec.sh"], drivers=["ladiffcodec.sh"])
    test_set = rename_sets(d)["test"]  # the chain must take the recipe's set names
    env = {**os.environ, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
    args = [
        "--codec_args", f"{FAST} --discriminator_start_step 1",
        "--ae_args", f"{FAST} --discriminator_start_step 1",
        "--diff_args", FAST,
        "--inference_args", "--sampling_steps 2",
        "--prepare_args", "--max_utts 4 --max_seconds 2",
    ]  # fmt: skip
    proc = subprocess.run(
        ["./run_ladiffcodec.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    for step in range(1, 7):
        assert f"Step {step}:" in proc.stdout, f"step {step} did not run"
    diff = d / "exp/codec_ladiffcodec_diffusion_16k_tiny"
    plain = d / "exp/codec_soundstream_16k_tiny"  # the phase-1 experiment the config names
    prep = (d / "exp/ladiffcodec_prep_ladiffcodec_diffusion_16k_tiny/phase_inputs").read_text()
    assert prep == (
        "discrete_codec exp/codec_soundstream_16k_tiny\n"
        "autoencoder exp/codec_ladiffcodec_ae_16k_tiny\n"
    )
    test_utts = set(read_scp(d / f"dump/raw/{test_set}/wav.scp"))
    assert set(read_scp(diff / f"decode_{test_set}/wav.scp")) == test_utts
    # the plain codec: ./run.sh --codec_exp <phase 1> --decode_bandwidths 0.8 (stages 6, 7)
    assert set(read_scp(plain / f"decode_{test_set}_0.8kbps/wav.scp")) == test_utts
    s_diff = json.loads((diff / f"scores/{test_set}/summary.json").read_text())
    s_plain = json.loads((plain / f"scores/{test_set}_0.8kbps/summary.json").read_text())
    assert s_diff["bitrate_kbps"] == pytest.approx(0.8) == s_plain["bitrate_kbps"]
    assert s_diff["pesq"]["n"] == 6 and s_diff["pesq"]["n_nan"] == 0
    table = (diff / f"scores/{test_set}_vs_plain_codec.txt").read_text()
    header = table.splitlines()[0].split()
    assert header[1:] == ["ladiffcodec", "soundstream_16k_tiny"]
    assert any(
        line.startswith("bitrate (kbps)") and line.count("0.800") == 2
        for line in table.splitlines()
    )
    # The packed phase-3 model decodes without the phase-1 and phase-2 experiments.
    packed = diff / "packed/codec_ladiffcodec_diffusion_16k_tiny.zip"
    shutil.rmtree(d / "exp/codec_soundstream_16k_tiny")
    shutil.rmtree(d / "exp/codec_ladiffcodec_ae_16k_tiny")
    model = codectk.load_codec(packed)
    wav = torch.randn(1, 1, 3200) * 0.1
    codes = model.encode(wav)
    assert codes.shape == (1, 2, 10)
    assert torch.equal(model.decode(codes), model.decode(codes))
