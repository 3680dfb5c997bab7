"""What a new user meets in the bundled recipe's first hour (issue 22): files others can
read, option mistakes stopped before any work with one clear line, job errors on the
console, a train.log that survives a re-run. Stages 1-4 only, plus two zero-step
trainings of the tiny test model."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from test.conftest import CORPUS, REPO
from test.helpers import write_conf
from test.recipe.copy import copy_recipe

pytestmark = pytest.mark.recipe
RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
UMASK = 0o002  # a shared cluster's group-writable umask


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
    return subprocess.run(
        ["./run.sh", *args],
        cwd=recipe,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=lambda: os.umask(UMASK),
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of the recipe after stages 1-4, run with umask 002."""
    d = tmp_path_factory.mktemp("first_hour") / "codec1"
    copy_recipe(d)
    write_conf(d / "conf" / "tiny.yaml", max_steps=0)
    ok(run(d, "--stage", "1", "--stop_stage", "4"))
    return d


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_follow_the_umask(recipe: Path):
    for rel in (
        "data/train/wav.scp",
        "dump/raw/test/wav.scp",
        "dump/raw/test/utt2num_samples",
        "dump/raw/train/wav.scp",
        "exp/codec_stats_16000/train/stats.json",
    ):
        assert mode(recipe / rel) == 0o664, rel
    wavs = list((recipe / "dump/raw/test/data").glob("*.wav"))
    assert wavs and all(mode(w) == 0o664 for w in wavs)


def console(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def test_unknown_set_is_one_line_and_touches_nothing(recipe: Path):
    proc = run(recipe, "--stage", "2", "--stop_stage", "2", "--test_sets", "nope")
    assert proc.returncode == 2
    text = console(proc)
    assert "--test_sets nope: data/nope/wav.scp not found; stage 1 makes it" in text
    for noise in ("integer expression", "seq:", "Usage: utils/split_scp.pl", "run.pl"):
        assert noise not in text
    assert not (recipe / "JOB=1:").exists() and not (recipe / "dump/raw/nope").exists()
    proc = run(recipe, "--stage", "6", "--stop_stage", "7", "--test_sets", "nope")
    assert proc.returncode == 2 and "dump/raw/nope/wav.scp not found; stage 2" in console(proc)


def test_stage_range_is_checked(recipe: Path):
    for args in (("--stage", "11"), ("--stage", "3", "--stop_stage", "2"), ("--stage", "x")):
        proc = run(recipe, *args)
        assert proc.returncode == 2, args
        assert "stages are 1 to 10" in console(proc) and "Successfully" not in console(proc)


def test_decoding_before_training_stops_before_making_folders(recipe: Path):
    proc = run(recipe, "--stage", "6", "--stop_stage", "7", "--tag", "untrained_yet")
    assert proc.returncode == 2
    assert "exp/codec_untrained_yet/valid.mel_distance.ave.pt not found; stage 5 makes it" in (
        console(proc)
    )
    assert not (recipe / "exp/codec_untrained_yet").exists()


def test_config_typo_is_the_real_error_before_any_work(recipe: Path):
    proc = run(recipe, "--stage", "5", "--stop_stage", "7", "--train_args", "--max_step 3")
    assert proc.returncode == 2
    text = console(proc)
    assert "--max_step 3 (--train_args): unknown key(s) ['max_step']; valid keys are" in text
    assert "resume" not in text and "Stage 5:" not in text
    assert not (recipe / "exp/codec_soundstream_16k_tiny_max_step3").exists()
    proc = run(recipe, "--stage", "5", "--train_args", "--codec_conf.n_filter 3")
    assert proc.returncode == 2
    assert "codec_conf (soundstream): unknown key(s) ['n_filter']" in console(proc)


def test_bad_bitrates_and_anchors_stop_before_any_work(recipe: Path):
    proc = run(recipe, "--stage", "5", "--stop_stage", "7", "--decode_bandwidths", "0.1 1.0")
    assert proc.returncode == 2
    text = console(proc)
    assert "bandwidth 0.1 kbps is below the lowest bitrate" in text
    assert "choose one of [0.4, 0.8, 1.2, 1.6] kbps" in text
    proc = run(recipe, "--stage", "5", "--stop_stage", "7", "--anchors", "mp3")
    assert proc.returncode == 2
    assert "--anchors: anchor 'mp3' not supported; choose one of ['codec2', 'opus']" in console(
        proc
    )
    assert not (recipe / "exp/codec_soundstream_16k_tiny").exists()


def test_a_failed_job_shows_its_error_and_leaves_no_half_dump(recipe: Path):
    broken = recipe / "data" / "broken"
    shutil.copytree(recipe / "data" / "test", broken)
    lines = (broken / "wav.scp").read_text().splitlines()
    utt = lines[2].split()[0]
    lines[2] = f"{utt} {recipe}/no/such/file.flac"
    (broken / "wav.scp").write_text("\n".join(lines) + "\n")
    proc = run(recipe, "--stage", "2", "--stop_stage", "2", "--test_sets", "broken", "--nj", "2")
    assert proc.returncode == 1
    text = console(proc)
    assert "run.pl: the last lines of dump/raw/broken/logdir/dump_wav." in text
    assert f"audio file not found: {recipe}/no/such/file.flac" in text
    assert "Error: Stage 2 (dump of data/broken) failed" in text
    out = recipe / "dump/raw/broken"
    assert not (out / "wav.scp").exists() and not list((out / "logdir").glob("output.*"))
    assert list((out / "logdir").glob("dump_wav.*.log"))  # the logs stay


def test_train_log_grows_over_reruns(recipe: Path):
    args = ("--stage", "5", "--stop_stage", "5", "--train_config", "conf/tiny.yaml")
    ok(run(recipe, *args, "--tag", "tiny"))
    ok(run(recipe, *args, "--tag", "tiny"))
    log = (recipe / "exp/codec_tiny/train.log").read_text()
    assert log.count("# Started at") == 2 and log.count("# Ended (code 0)") == 2
    assert "the inference model is the untrained step-0 model" in log
    assert mode(recipe / "exp/codec_tiny/valid.mel_distance.best.pt") == 0o664


def test_codec_exp_decodes_and_scores_a_model_file(recipe: Path):
    """--codec_exp: stages 6-7 of a model file without training (an untrained tiny model
    here; a converted released model the same), its outputs in exp/codec_<file name>;
    a failing decoding job shows its log's tail and leaves no half-made set."""
    from codectk.config import load_train_config
    from codectk.io.modelfile import model_file, save_atomic
    from codectk.models import CODECS

    config = load_train_config(recipe / "conf" / "tiny.yaml")
    codec = CODECS.build(config.codec, config.codec_conf)
    save_atomic(
        model_file(config.to_dict(), codec.state_dict(), 0, {}), recipe / "models/untrained.pt"
    )
    proc = ok(run(recipe, "--stage", "6", "--codec_exp", "models/untrained.pt"))
    exp = recipe / "exp/codec_untrained"
    assert "Stage 8: nothing to pack: --codec_exp models/untrained.pt is a model file" in (
        proc.stdout
    )
    utts = (recipe / "dump/raw/test/wav.scp").read_text().split("\n")
    assert len((exp / "decode_test/wav.scp").read_text().splitlines()) == len(utts) - 1
    assert (exp / "scores/test/summary.json").is_file() and (exp / "report/index.html").is_file()
    assert not (exp / "packed").exists()
    proc = run(recipe, "--stage", "5", "--codec_exp", "models/untrained.pt")
    assert proc.returncode == 2 and "stage 5 needs an experiment folder" in console(proc)
    proc = run(
        recipe, "--stage", "6", "--stop_stage", "6", "--codec_exp", "models/untrained.pt",
        "--tag", "broken", "--inference_args", "--precision fp64",
    )  # fmt: skip
    assert proc.returncode == 1
    text = console(proc)
    assert "run.pl: the last lines of exp/codec_broken/decode_test/logdir/decode." in text
    assert "fp64" in text and "Error: Stage 6 (decoding dump/raw/test) failed" in text
    assert not (recipe / "exp/codec_broken/decode_test/wav").exists()
