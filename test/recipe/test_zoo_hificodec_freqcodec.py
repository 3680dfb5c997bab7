"""HiFi-Codec and FreqCodec through the bundled recipe (stages 5 to 7) at tiny size.

Stages 1 to 4 run once in a copy of ``egs/mini_librispeech/codec1``; each family then
trains 3 steps (discriminators on from step 1), decodes the 6 test speakers and
scores them, selected only by ``--train_config``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from codectk.io.codes import read_codes_meta
from codectk.io.datadir import read_scp
from test.conftest import CORPUS, REPO
from test.recipe.copy import copy_recipe

pytestmark = pytest.mark.recipe
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
# One torch thread: on 2 shared cores, 2 OpenMP threads beside another busy process run
# several times slower than one.
TRAIN_ARGS = (
    "--max_steps 3 --valid_interval 3 --log_interval 1 --discriminator_start_step 1 "
    "--batch_size 2 --segment_duration 0.3 --valid_max_duration 1.0 --num_threads 1"
)


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
    proc = subprocess.run(
        ["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"run.sh {args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of the recipe with stages 1 to 4 done (data prep, dump, filter, stats)."""
    d = tmp_path_factory.mktemp("zoo") / "codec1"
    copy_recipe(d)
    run(d, "--stage", "1", "--stop_stage", "4")
    return d


@pytest.mark.parametrize("family", ["hificodec", "freqcodec"])
def test_stages_5_to_7(recipe: Path, family: str):
    config = f"conf/{family}_16k_tiny.yaml"
    stages = ["--stage", "5", "--stop_stage", "7", "--tag", family]
    proc = run(recipe, *stages, "--train_config", config, "--train_args", TRAIN_ARGS)
    for stage in (5, 6, 7):
        assert f"Stage {stage}:" in proc.stdout, f"stage {stage} did not run"
    exp = recipe / "exp" / f"codec_{family}"
    assert f"codec {family}:" in (exp / "train.log").read_text()
    history = json.loads((exp / "history.json").read_text())
    assert any("d_total" in r for r in history if r["phase"] == "train"), "no discriminator step"
    assert (exp / "valid.mel_distance.ave.pt").exists()
    decoded = read_scp(exp / "decode_test" / "wav.scp")
    assert set(decoded) == set(read_scp(recipe / "dump/raw/test/wav.scp"))
    meta = read_codes_meta(exp / "decode_test" / "codes.scp")
    assert (meta["n_codebooks"], meta["codebook_size"], meta["frame_rate"]) == (4, 64, 50.0)
    summary = json.loads((exp / "scores/test/summary.json").read_text())
    for metric in ("pesq", "stoi", "mel_distance", "si_sdr"):
        assert summary[metric]["n"] == 6, metric
    assert summary["bitrate_kbps"] == pytest.approx(1.2)
