import json
from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config
from codectk.inference import load_codec
from codectk.io.modelfile import CheckpointError, load_file, save_atomic
from codectk.train.checkpoint import average_state_dicts
from codectk.train.trainer import NonFiniteLossError, Trainer
from test.helpers import make_soundstream_conf


def _trainer(tmp_path: Path, dumped, name="exp", **overrides) -> Trainer:
    config = build_train_config(make_soundstream_conf(**overrides))
    return Trainer(config, tmp_path / name, dumped["train"], dumped["valid"])


def test_training_writes_experiment_and_learns(tmp_path: Path, dumped):
    exp = tmp_path / "exp"
    ave = _trainer(tmp_path, dumped, max_steps=30, valid_interval=15, log_interval=10).run()
    assert ave == exp / "valid.mel_distance.ave_2best.pt"
    assert (exp / "valid.mel_distance.ave.pt").resolve() == ave.resolve()
    for name in (
        "config.yaml",
        "checkpoint.pt",
        "history.json",
        "valid.mel_distance.best.pt",
        "images/mel.png",
        "images/mel_distance.png",
    ):
        assert (exp / name).exists(), name
    assert list((exp / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list(exp.glob("*steps.pt"))) <= 2
    history = json.loads((exp / "history.json").read_text())
    valid = [r["mel_distance"] for r in history if r["phase"] == "valid"]
    assert len(valid) == 3
    assert min(valid[1:]) < valid[0], f"validation mel distance did not improve: {valid}"
    assert any("d_total" in r for r in history if r["phase"] == "train"), (
        "discriminator never trained"
    )
    codec = load_codec(exp)
    assert not codec.training


def test_resume_gives_identical_weights(tmp_path: Path, dumped):
    straight = _trainer(tmp_path, dumped, "a", max_steps=6, valid_interval=3)
    straight.run()
    first = _trainer(tmp_path, dumped, "b", max_steps=3, valid_interval=3)
    first.run()
    resumed = _trainer(tmp_path, dumped, "b", max_steps=6, valid_interval=3)
    assert resumed.step == 3
    resumed.run()
    for (k, a), b in zip(straight.codec.state_dict().items(), resumed.codec.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{k} differs after resume")
    # A finished run re-run does nothing but re-average.
    again = _trainer(tmp_path, dumped, "b", max_steps=6, valid_interval=3)
    assert again.step == 6
    again.run()


def test_zero_steps_is_the_untrained_model(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, max_steps=0)
    init = {k: v.clone() for k, v in t.codec.state_dict().items()}
    t.run()
    codec = load_codec(tmp_path / "exp")
    for k, v in codec.state_dict().items():
        torch.testing.assert_close(v, init[k])


def test_average_leaves_out_the_untrained_step_0(tmp_path: Path, dumped, caplog):
    """max_steps < valid_interval: validations at steps 0 and 4 only; the inference
    model is step 4's weights, not their average with the untrained model."""
    t = _trainer(tmp_path, dumped, max_steps=4, valid_interval=10, keep_nbest_models=5)
    with caplog.at_level("INFO", logger="codectk"):
        ave = t.run()
    trained = {k: v.clone() for k, v in t.codec.state_dict().items()}
    assert ave == tmp_path / "exp" / "valid.mel_distance.ave_1best.pt"
    assert load_file(ave, "codectk-model")["metrics"]["valid.mel_distance.steps"] == [4]
    for k, v in load_codec(tmp_path / "exp").state_dict().items():
        torch.testing.assert_close(v, trained[k], rtol=0, atol=0)
    assert "averaged steps [4]" in caplog.text
    assert not (tmp_path / "exp" / "0steps.pt").exists()


def test_zero_steps_says_the_model_is_untrained(tmp_path: Path, dumped, caplog):
    with caplog.at_level("INFO", logger="codectk"):
        _trainer(tmp_path, dumped, max_steps=0).run()
    assert "the inference model is the untrained step-0 model" in caplog.text
    assert "averaged steps [0]" in caplog.text


def test_nan_loss_stops_with_context(tmp_path: Path, dumped, monkeypatch):
    t = _trainer(tmp_path, dumped, max_steps=4, discriminator_start_step=100)
    real = t.loss.generator

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return total * float("nan") if t.step == 2 else total, parts

    monkeypatch.setattr(t.loss, "generator", poisoned)
    with pytest.raises(
        NonFiniteLossError,
        match=r"step 2 on utterances \['.*'\].*last good checkpoint: .*checkpoint.pt",
    ):
        t.run()


def test_checkpoint_format_checks(tmp_path: Path):
    save_atomic({"format": "other", "version": 1}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a codectk-model file"):
        load_file(tmp_path / "x.pt", "codectk-model")
    save_atomic({"format": "codectk-model", "version": 7}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="version 7 not supported"):
        load_file(tmp_path / "y.pt", "codectk-model")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "codectk-model", "version": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights-only"):
        load_file(tmp_path / "evil.pt", "codectk-model")


def test_average_state_dicts():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(1)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(2)}
    avg = average_state_dicts([a, b])
    torch.testing.assert_close(avg["w"], torch.tensor([2.0, 4.0]))
    assert int(avg["n"]) == 2
    with pytest.raises(ValueError, match="different parameters"):
        average_state_dicts([a, {"w": a["w"]}])
