"""AudioDec's chain through the bundled recipe at tiny size (run_audiodec.sh): symAD in two
phases, code statistics, the AD v1 vocoder on them (its config names the symAD
experiment), decoding and scoring (stages 6, 7), streaming as one job array that
reproduces the whole-file decoding, and the denoising phase."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from codectk.io.datadir import read_scp
from test.conftest import CORPUS, REPO
from test.recipe.copy import copy_recipe
from test.recipe.sets import rename_sets

pytestmark = pytest.mark.recipe
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
COMMON = "--batch_size 2 --segment_duration 0.2 --valid_max_duration 2.0 --num_threads 1"


def test_audiodec_chain(tmp_path: Path):
    d = tmp_path / "codec1"
    copy_recipe(d, scripts=["run_audiodec.sh"], drivers=["audiodec.sh"])
    sets = rename_sets(d)  # the chain must take the recipe's set names
    train, valid, test = sets["train"], sets["valid"], sets["test"]
    env = {**os.environ, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
    args = [
        "--stop_stage", "5",
        "--symad_eval", "false",
        "--stats_opts", "--max_utts 12",
        "--symad_args",
        f"--max_steps 6 --valid_interval 6 --log_interval 2 --discriminator_start_step 4 "
        f"--freeze_from_step 4 {COMMON}",
        "--vocoder_args",
        f"--max_steps 2 --valid_interval 2 --log_interval 1 --discriminator_start_step 1 {COMMON}",
        "--run_opts", "--inference_nj 1",
    ]  # fmt: skip
    proc = subprocess.run(
        ["./run_audiodec.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for step in range(1, 6):
        assert f"Step {step}:" in proc.stdout
    symad = d / "exp/codec_symAD_16k_tiny"
    history = [r for r in json.loads((symad / "history.json").read_text()) if r["phase"] == "train"]
    assert "d_total" not in history[0] and "d_total" in history[-1]  # two phases
    stats = np.load(symad / "code_stats.npy")
    assert stats.shape == (2, 16) and (stats[1] > 0).all()
    voc = d / "exp/codec_AudioDec_v1_symAD_16k_tiny"
    resolved = yaml.safe_load((voc / "config.yaml").read_text())  # the config named its phase
    assert resolved["init_from"] == "exp/codec_symAD_16k_tiny"
    assert resolved["codec_conf"]["stats"] == "exp/codec_symAD_16k_tiny/code_stats.npy"
    summary = json.loads((voc / f"scores/{test}/summary.json").read_text())
    assert summary, "stage 7 wrote no summary"
    decoded = read_scp(voc / f"decode_{test}/wav.scp")
    assert set(decoded) == set(read_scp(d / f"dump/raw/{test}/wav.scp"))
    logs = sorted((voc / f"stream_{test}/logdir").glob("stream.*.log"))  # one job array
    assert len(logs) == 4 and all("utterances of" in log.read_text() for log in logs)
    assert set(read_scp(voc / f"stream_{test}/wav.scp")) == set(decoded)
    for utt, path in decoded.items():  # streaming == whole-file decoding (16-bit WAVs)
        whole, _ = sf.read(path, dtype="float32")
        streamed, _ = sf.read(voc / f"stream_{test}/wav/{utt}.wav", dtype="float32")
        assert len(streamed) == len(whole)
        assert np.abs(streamed - whole).max() <= 2 / 32768, utt

    # Step 6 (--denoise true): noisy/clean pairs, then the encoder alone is trained on them
    # with quantizer and decoder held at the symAD's weights.
    args = [
        "--stage", "6",
        "--denoise", "true",
        "--snrs", "5 10",
        "--denoise_args", f"--max_steps 2 --valid_interval 2 --log_interval 1 {COMMON}",
        "--run_opts", "--inference_nj 1",
    ]  # fmt: skip
    proc = subprocess.run(
        ["./run_audiodec.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    noisy = d / f"dump/raw/{train}_noisy"
    assert (d / f"dump/raw/{valid}_noisy/wav.scp").is_file()
    snrs = [float(line.split()[1]) for line in (noisy / "utt2snr").read_text().splitlines()]
    assert set(snrs) <= {5.0, 10.0} and len(snrs) == len(read_scp(d / f"dump/raw/{train}/wav.scp"))
    assert set(read_scp(noisy / "clean.scp")) == set(read_scp(noisy / "wav.scp"))
    import torch

    from codectk.io.modelfile import read_model_file

    before = read_model_file(symad)[0]["model"]  # what init_from copied
    state = d / "exp/codec_symAD_16k_tiny_denoise/checkpoint.pt"
    after = torch.load(state, map_location="cpu", weights_only=True)["codec"]
    for name, value in after.items():
        if name.startswith(("quantizer.", "decoder.")):
            assert torch.equal(value, before[name]), f"{name} moved"
    moved = [n for n in after if n.startswith("encoder.") and not torch.equal(after[n], before[n])]
    assert moved, "the denoising step did not train the encoder"
