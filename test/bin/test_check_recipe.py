"""codectk.bin.check_recipe: what codec.sh checks before any stage, one error each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codectk.bin import check_recipe
from codectk.errors import ConfigError
from codectk.io.modelfile import model_file, save_atomic
from codectk.models.base import BandwidthError
from test.helpers import make_soundstream_conf, write_conf

SETS = ["--train_set", "tr", "--valid_set", "dv", "--test_sets", "ev"]


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch) -> Path:
    """An empty recipe folder (the checks read paths relative to it) with a config."""
    monkeypatch.chdir(tmp_path)
    write_conf(tmp_path / "c.yaml")
    return tmp_path


def check(*args: str) -> int:
    return check_recipe.main([*SETS, "--train_config", "c.yaml", "--tag", "c", *args])


def made(*paths: str) -> None:
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        Path(p).write_text("")


def tiny_model(path: Path) -> Path:
    from codectk.config import build_train_config
    from codectk.models import CODECS

    config = build_train_config(make_soundstream_conf())
    codec = CODECS.build(config.codec, config.codec_conf)
    save_atomic(model_file(config.to_dict(), codec.state_dict(), 0, {}), path)
    return path


def test_options(recipe: Path):
    with pytest.raises(ConfigError, match="^--valid_set is required$"):
        check_recipe.main(["--train_set", "tr"])
    for stages in (["--stage", "11"], ["--stage", "3", "--stop_stage", "2"], ["--stage", "x"]):
        with pytest.raises(ConfigError, match="stages are 1 to 10"):
            check(*stages)
    with pytest.raises(ConfigError, match="--train_config 'nope.yaml': no such file"):
        check_recipe.main([*SETS, "--stage", "5", "--train_config", "nope.yaml"])
    with pytest.raises(ConfigError, match="--inference_config 'x.yaml': no such file"):
        check("--stage", "1", "--stop_stage", "1", "--inference_config", "x.yaml")
    with pytest.raises(ConfigError, match="stage 9 needs --hf_repo"):
        check("--stage", "9", "--stop_stage", "9")
    assert check("--stage", "1", "--stop_stage", "1") == 0


def test_files_each_stage_needs(recipe: Path):
    with pytest.raises(ConfigError, match="^--test_sets ev: data/ev/wav.scp not found; stage 1"):
        made("data/tr/wav.scp", "data/dv/wav.scp")
        check("--stage", "2", "--stop_stage", "2")
    with pytest.raises(ConfigError, match="^--train_set tr: dump/raw/org/tr/wav.scp not found"):
        check("--stage", "3", "--stop_stage", "3")
    with pytest.raises(
        ConfigError, match="^--valid_set dv: dump/raw/dv/wav.scp not found; stage 3"
    ):
        made("dump/raw/tr/wav.scp")
        check("--stage", "4", "--stop_stage", "4")
    assert check("--stage", "4", "--stop_stage", "4", "--skip_data_prep", "true") == 0
    with pytest.raises(
        ConfigError, match="--inference_model m.pt: exp/codec_c/m.pt not found; stage 5"
    ):
        made("dump/raw/ev/wav.scp")
        check("--stage", "6", "--stop_stage", "6", "--inference_model", "m.pt")
    made("exp/codec_c/m.pt")
    with pytest.raises(
        ConfigError, match="exp/codec_c/decode_ev_m_1.5kbps/wav.scp not found; stage 6"
    ):
        check(
            "--stage",
            "7",
            "--stop_stage",
            "7",
            "--inference_tag",
            "m",
            "--decode_bandwidths",
            "1.5",
        )
    with pytest.raises(
        ConfigError, match="--tag c: exp/codec_c/packed/codec_c.zip not found; stage 8"
    ):
        check("--stage", "9", "--stop_stage", "9", "--hf_repo", "u/n")
    with pytest.raises(
        ConfigError, match="--token_sets dv: dump/raw/dv/wav.scp not found; stage 3"
    ):
        check(
            "--stage",
            "10",
            "--stop_stage",
            "10",
            "--token_sets",
            "ev dv",
            "--inference_model",
            "m.pt",
        )


def test_codec_exp(recipe: Path):
    assert (
        check("--stage", "6", "--stop_stage", "7", "--codec_exp", "m.pt", "--skip_eval", "true")
        == 0
    )
    with pytest.raises(
        ConfigError, match="--codec_exp m.pt: no such experiment folder, model file"
    ):
        check("--stage", "6", "--stop_stage", "6", "--codec_exp", "m.pt")
    tiny_model(recipe / "m.pt")
    for stage in ("5", "9"):
        with pytest.raises(
            ConfigError, match=f"is a model file: stage {stage} needs an experiment"
        ):
            check("--stage", stage, "--stop_stage", "9", "--codec_exp", "m.pt", "--hf_repo", "u/n")
    made("dump/raw/ev/wav.scp")
    args = ["--stage", "6", "--stop_stage", "8", "--codec_exp", "m.pt"]
    assert check(*args, "--decode_bandwidths", "1.6 5") == 0  # rounded down, with a note
    with pytest.raises(BandwidthError, match="below the lowest bitrate"):
        check(*args, "--decode_bandwidths", "0.1")
    # stage 7 alone looks for the decoded set where a model file's outputs go
    with pytest.raises(ConfigError, match="exp/codec_c/decode_ev/wav.scp not found; stage 6"):
        check("--stage", "7", "--stop_stage", "7", "--codec_exp", "m.pt")


def test_training_config_and_its_references(recipe: Path):
    """--train_args mixes config overrides with codectk.bin.train's options (--num_threads,
    --ngpu): accepted, while a misspelt key and a dangling ${exp:NAME} stop the recipe."""
    made("dump/raw/tr/wav.scp", "dump/raw/dv/wav.scp")
    args = ["--stage", "5", "--stop_stage", "5"]
    assert check(*args, "--train_args", "--max_steps 3 --num_threads 1") == 0
    assert check(*args, "--train_args=--max_steps=3") == 0  # a value that begins with --
    with pytest.raises(ConfigError, match=r"--max_step 3 \(--train_args\): unknown key"):
        check(*args, "--train_args", "--max_step 3 --num_threads 1")
    with pytest.raises(ConfigError, match=r"c.yaml: init_from: \$\{exp:a\} is exp/codec_a, but"):
        check(*args, "--train_args", "--init_from ${exp:a}")
    tiny_model(recipe / "exp" / "codec_a" / "valid.mel_distance.ave.pt")
    assert check(*args, "--train_args", "--init_from ${exp:a}") == 0
    # references resolve against the experiment folder's parent (--codec_exp elsewhere)
    with pytest.raises(ConfigError, match="no experiment other/codec_a"):
        check(*args, "--train_args", "--init_from ${exp:a}", "--codec_exp", "other/codec_c")


def test_anchors(recipe: Path):
    made("dump/raw/ev/wav.scp", "exp/codec_c/decode_ev/wav.scp")
    with pytest.raises(ConfigError, match=r"--anchors: anchor 'mp3' not supported"):
        check("--stage", "7", "--stop_stage", "7", "--anchors", "mp3")


def test_phase_chain(recipe: Path):
    write_conf(recipe / "b.yaml", init_from="${exp:c}")
    chain = ["--phase", "c.yaml", "--phase_args=--max_steps=2", "--phase", "b.yaml"]
    assert check_recipe.main(chain) == 0
    with pytest.raises(ConfigError, match=r"b.yaml: init_from: \$\{exp:c\} names c, which is"):
        check_recipe.main(["--phase", "b.yaml", "--phase", "c.yaml"])
    with pytest.raises(ConfigError, match=r"--max_step 2 \(the train_args of c.yaml\): unknown"):
        check_recipe.main(
            ["--phase", "c.yaml", "--phase_args", "--max_step 2", "--phase", "b.yaml"]
        )
    with pytest.raises(SystemExit):
        check_recipe.main(["--phase_args=--max_steps=2", "--phase", "c.yaml"])
    assert sorted(os.listdir(recipe)) == ["b.yaml", "c.yaml"]  # nothing written
