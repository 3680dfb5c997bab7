"""Stages 6-10 of the bundled recipe with anchors, report, upload folder and tokens.

The model is the tiny test SoundStream trained for 0 steps (the stages under test do not
care how good it is); stages 1-4 and 6-10 run through run.sh on the bundled corpus.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codectk.bin import train
from codectk.io.codes import read_codes
from codectk.io.datadir import read_scp
from codectk.tokens import load_tokens
from test.conftest import CORPUS, REPO
from test.helpers import write_conf
from test.recipe.copy import copy_recipe
from test.report.conftest import HAVE_ANCHOR_TOOLS
from test.single_thread import one_torch_thread  # noqa: F401

pytestmark = [
    pytest.mark.recipe,
    pytest.mark.skipif(not HAVE_ANCHOR_TOOLS, reason="opus-tools or codec2 not installed"),
]
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
METRICS = "pesq,stoi,mel_distance,si_sdr"


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(MAIN_ROOT=str(REPO), MINI_LIBRISPEECH=str(CORPUS))
    proc = subprocess.run(
        ["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"run.sh {args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_stages_6_to_10(tmp_path: Path):
    d = tmp_path / "codec1"
    copy_recipe(d, conf=False)
    conf = write_conf(d / "conf" / "tiny.yaml", max_steps=0)
    run(d, "--stage", "1", "--stop_stage", "4")
    exp = d / "exp" / "codec_tiny"
    args = ["--config", str(conf), "--output_dir", str(exp)]
    args += ["--train_data", str(d / "dump/raw/train"), "--valid_data", str(d / "dump/raw/valid")]
    assert train.main(args) == 0

    proc = run(
        d,
        *("--stage", "6", "--stop_stage", "10", "--tag", "tiny"),
        *("--train_config", "conf/tiny.yaml"),
        *("--metrics", METRICS, "--anchors", "opus codec2"),  # codec.sh passes it to both
        *("--anchor_opts", "--opus_kbps 6 --codec2_kbps 2.4"),
        *("--report_opts", "--n_utts 2", "--hf_repo", "me/codec_tiny"),
        *("--token_sets", "test", "--token_opts", "--npy true"),
    )
    for stage in range(6, 11):
        assert f"Stage {stage}:" in proc.stdout, stage
    tests = set(read_scp(d / "dump/raw/test/wav.scp"))
    assert len(tests) == 6
    # Anchors: shared folder, measured bitrates, scored like the model.
    for point, kbps in (("opus_6", 6.0), ("codec2_2.4", 2.4)):
        meta = json.loads((d / "exp/anchors" / point / "decode_test/anchor.json").read_text())
        assert meta["n_utts"] == 6 and meta["measured_kbps"] == pytest.approx(kbps, rel=0.08)
        summary = json.loads((d / "exp/anchors" / point / "scores/test/summary.json").read_text())
        assert summary["pesq"]["n"] == 6 and summary["metric_names"] == METRICS.split(",")
        assert summary["bitrate_kbps"] == pytest.approx(meta["measured_kbps"], rel=1e-5)
        low, high = (15, 25) if point.startswith("codec2") else (-0.2, 0.2)  # decoder delay, ms
        assert low < summary["delay"]["ms"]["mean"] < high, summary["delay"]
    model = json.loads((exp / "scores/test/summary.json").read_text())
    assert model["metric_names"] == METRICS.split(",") and "delay" not in model
    # Report: a table row per point, plots, the pages.
    report = exp / "report"
    rows = (report / "rd_test.tsv").read_text().splitlines()[1:]
    assert sorted(r.split("\t")[2] for r in rows) == ["codec2_2.4", "codec_tiny_1.6kbps", "opus_6"]
    for f in ("plots/rd_test.png", "index.html", "mushra.html"):
        assert (report / f).is_file(), f
    assert len(list((report / "spectrograms/test").glob("*.png"))) == 2
    # Stage 9: the repository folder, not uploaded (no HF_TOKEN), exit 0.
    hf = exp / "hf_repo"
    assert (hf / "codec_tiny.zip").is_file() and (hf / "plots/rd_test.png").is_file()
    card = (hf / "README.md").read_text()
    assert "| train | `dump/raw/train` | 60 |" in card and "codec_tiny_1.6kbps" not in card
    assert "not uploaded: HF_TOKEN is not set" in proc.stdout + proc.stderr
    # Stage 10: the test set's tokens are stage 6's codes.
    tokens = load_tokens(exp / "tokens/test")
    stage6 = read_codes(exp / "decode_test/codes.scp")
    assert set(tokens.codes) == set(stage6) == tests
    for utt, codes in stage6.items():
        np.testing.assert_array_equal(tokens.codes[utt], codes)
