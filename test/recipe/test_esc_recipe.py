"""ESC through the bundled recipe at tiny size: stages 5 to 7 with
``--train_config conf/esc_16k_tiny.yaml`` (pre-training steps, then VQ with stream
dropout), decoding and scoring at every bitrate from 1.5 to 9 kbps into one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codectk.io.codes import read_codes_meta
from test.recipe.copy import copy_recipe
from test.recipe.test_zoo_hificodec_freqcodec import run

pytestmark = pytest.mark.recipe
# The lowest, a middle and the highest bitrate (all six work the same way; three keep
# the decodings and scorings within the test budget).
BANDWIDTHS = [1.5, 4.5, 9.0]
# 8 steps: 5 pre-training steps (the tiny config's) then 3 with VQ and stream dropout.
TRAIN_ARGS = (
    "--max_steps 8 --valid_interval 8 --log_interval 1 --batch_size 2 "
    "--segment_duration 0.32 --valid_max_duration 1.0 --num_threads 1"
)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of the recipe with stages 1 to 4 done."""
    d = tmp_path_factory.mktemp("esc") / "codec1"
    copy_recipe(d)
    run(d, "--stage", "1", "--stop_stage", "4")
    # Two short test utterances keep six decodings and scorings within the test budget.
    test = d / "dump" / "raw" / "test"
    keep = {"1183-124566-0000", "3168-173564-0000"}
    for name in ("wav.scp", "utt2spk", "utt2num_samples"):
        lines = (test / name).read_text().splitlines()
        (test / name).write_text("".join(f"{x}\n" for x in lines if x.split()[0] in keep))
    spks = {u.split("-")[0] for u in keep}
    for name in ("spk2utt", "spk2gender"):
        lines = (test / name).read_text().splitlines()
        (test / name).write_text("".join(f"{x}\n" for x in lines if x.split()[0] in spks))
    return d


def test_tiny_esc_trains_decodes_and_scores_every_bitrate(recipe: Path):
    proc = run(
        recipe,
        *("--stage", "5", "--stop_stage", "7", "--tag", "esc"),
        *("--train_config", "conf/esc_16k_tiny.yaml"),
        *("--train_args", TRAIN_ARGS),
        *("--decode_bandwidths", " ".join(f"{b:g}" for b in BANDWIDTHS)),
        *("--inference_nj", "1"),
    )
    for stage in (5, 6, 7):
        assert f"Stage {stage}:" in proc.stdout, f"stage {stage} did not run"
    exp = recipe / "exp" / "codec_esc"
    history = json.loads((exp / "history.json").read_text())
    train = [r for r in history if r["phase"] == "train"]
    assert train[-1]["step"] == 8
    early, late = train[0], train[-1]
    assert early.get("g_codebook", 0.0) == 0.0 and late["g_codebook"] > 0  # 5 pre-training steps
    for kbps in BANDWIDTHS:
        dec = exp / f"decode_test_{kbps:g}kbps"
        meta = read_codes_meta(dec / "codes.scp")
        assert meta["n_codebooks"] == round(kbps / 1.5) * 3 and meta["codebooks_per_stream"] == 3
        summary = json.loads((exp / f"scores/test_{kbps:g}kbps/summary.json").read_text())
        assert summary["bitrate_kbps"] == pytest.approx(kbps)
        streams = summary["codebook_usage"]["per_stream"]
        assert len(streams) == round(kbps / 1.5)
        assert all(0 < s["utilisation"] <= 1 for s in streams)
        assert "stream" in (exp / f"scores/test_{kbps:g}kbps/summary.txt").read_text()
    table = (exp / "scores/test_bitrates.tsv").read_text().splitlines()
    assert table[0].startswith("bitrate_kbps")
    rates = [float(line.split("\t")[0]) for line in table[1:]]
    assert rates == pytest.approx(BANDWIDTHS)
    header = table[0].split("\t")
    for col in ("pesq_mean", "mel_distance_mean", "si_sdr_mean", "codebook_utilisation"):
        assert col in header, col
