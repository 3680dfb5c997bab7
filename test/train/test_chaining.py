"""Chained experiments: ``init_from`` / ``init_modules`` / ``init_map``, ``freeze_modules``
from a step, and model-internal loss terms (``CodecOutput.losses``)."""

from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config
from codectk.errors import CodectkError
from codectk.inference import load_codec
from codectk.models.soundstream import SoundStream
from codectk.registry import merge_sections
from codectk.train.trainer import Trainer
from test.helpers import make_soundstream_conf


def _trainer(tmp_path: Path, dumped, name, **overrides) -> Trainer:
    config = build_train_config(make_soundstream_conf(**overrides))
    return Trainer(config, tmp_path / name, dumped["train"], dumped["valid"])


def _sd(module: torch.nn.Module, prefix: str) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items() if k.startswith(prefix)}


def test_init_from_copies_named_modules_only(tmp_path: Path, dumped):
    _trainer(tmp_path, dumped, "phase1", max_steps=3, valid_interval=3).run()
    phase1 = load_codec(tmp_path / "phase1")
    t = _trainer(
        tmp_path,
        dumped,
        "phase2",
        seed=7,
        max_steps=0,
        init_from=str(tmp_path / "phase1"),
        init_modules=["encoder"],
    )
    for k, v in _sd(phase1, "encoder").items():
        torch.testing.assert_close(t.codec.state_dict()[k], v, rtol=0, atol=0)
    dec_ours, dec_theirs = _sd(t.codec, "decoder"), _sd(phase1, "decoder")
    assert any(not torch.equal(dec_ours[k], dec_theirs[k]) for k in dec_ours)


def test_init_from_errors_name_the_problem(tmp_path: Path, dumped):
    _trainer(tmp_path, dumped, "phase1", max_steps=0).run()
    with pytest.raises(CodectkError, match="names no parameter"):
        _trainer(
            tmp_path, dumped, "x", init_from=str(tmp_path / "phase1"), init_modules=["nothing"]
        )
    with pytest.raises(CodectkError, match="shape"):
        _trainer(
            tmp_path,
            dumped,
            "y",
            init_from=str(tmp_path / "phase1"),
            codec_conf=merge_sections(
                make_soundstream_conf()["codec_conf"], {"encoder": {"dimension": 8}}
            ),
        )
    with pytest.raises(CodectkError, match="not a submodule"):
        _trainer(tmp_path, dumped, "z", freeze_modules=["no_such_module"])


def test_freeze_from_step_holds_encoder_and_codebooks(tmp_path: Path, dumped):
    t = _trainer(
        tmp_path,
        dumped,
        "frozen",
        max_steps=6,
        valid_interval=6,
        freeze_modules=["encoder", "quantizer"],
        freeze_from_step=4,
        discriminator_start_step=100,
    )
    snapshots = {}
    orig = t._train_step

    def spy(batch):
        if t.step == 4:
            snapshots["before"] = _sd(t.codec, "encoder") | _sd(t.codec, "quantizer")
            snapshots["decoder"] = _sd(t.codec, "decoder")
        return orig(batch)

    t._train_step = spy
    t.run()
    after_enc = _sd(t.codec, "encoder") | _sd(t.codec, "quantizer")
    for k, v in snapshots["before"].items():
        assert torch.equal(after_enc[k], v), f"{k} moved while frozen"
    dec = _sd(t.codec, "decoder")
    assert any(not torch.equal(dec[k], snapshots["decoder"][k]) for k in dec), (
        "decoder did not train"
    )


def test_model_loss_terms_are_optimised_and_logged(tmp_path: Path, dumped, monkeypatch):
    orig_forward = SoundStream.forward

    def forward(self, wav, n_quantizers=None):
        out = orig_forward(self, wav, n_quantizers)
        out.losses["latent_l2"] = 0.5 * self.latent(wav).pow(2).mean()
        return out

    monkeypatch.setattr(SoundStream, "forward", forward)
    t = _trainer(tmp_path, dumped, "losses", max_steps=4, valid_interval=2, log_interval=2)
    t.run()
    train = [r for r in t.history if r["phase"] == "train"]
    valid = [r for r in t.history if r["phase"] == "valid"]
    assert all("g_latent_l2" in r for r in train)
    assert all("latent_l2" in r for r in valid)


def test_discriminator_update_probability(tmp_path: Path, dumped):
    t = _trainer(
        tmp_path,
        dumped,
        "prob",
        max_steps=12,
        valid_interval=12,
        log_interval=12,
        discriminator_start_step=1,
        discriminator_update_prob=0.5,
    )
    turns = [t._discriminator_turn() for t.step in range(1, 13)]
    t.step = 0
    assert 0 < sum(turns) < 12  # some steps skip the discriminator, the draw is per step
    t.run()
    row = next(r for r in t.history if r["phase"] == "train")
    assert "d_total" in row and "g_adv" in row
    assert (tmp_path / "prob" / "checkpoint.pt").exists()
    state = torch.load(tmp_path / "prob" / "checkpoint.pt", weights_only=True)
    assert "loss" in state
