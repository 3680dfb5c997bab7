import importlib
from pathlib import Path

import pytest

import codectk.config as config_module
from codectk.config import (
    CONFIG_VERSION,
    ConfigError,
    apply_overrides,
    build_train_config,
    load_train_config,
    load_yaml,
    save_config,
    upgrade_config,
)

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_load_and_override(tmp_path: Path):
    text = "codec: soundstream\ncodec_conf: {encoder: {n_filters: 8}}\nmax_steps: 10\n"
    p = _write(tmp_path, text)
    overrides = ["--max_steps", "3", "--codec_conf.encoder.n_filters=16", "--segment_duration"]
    c = load_train_config(p, [*overrides, "0.5"])
    assert c.max_steps == 3 and c.codec_conf == {"encoder": {"n_filters": 16}}
    assert c.segment_duration == 0.5
    save_config(c, tmp_path / "out.yaml")
    assert load_train_config(tmp_path / "out.yaml") == c


def test_unknown_key_is_an_error(tmp_path: Path):
    p = _write(tmp_path, "codec: soundstream\nmax_step: 10\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_step'\].*max_steps"):
        load_train_config(p)


def test_bad_type_and_value(tmp_path: Path):
    with pytest.raises(ConfigError, match="batch_size"):
        load_train_config(_write(tmp_path, "codec: x\nbatch_size: eight\n"))
    with pytest.raises(ConfigError, match="batch_size=0"):
        load_train_config(_write(tmp_path, "codec: x\nbatch_size: 0\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_train_config(_write(tmp_path, "codec: [\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "nope.yaml")


def test_override_errors():
    with pytest.raises(ConfigError, match="no value"):
        apply_overrides({}, ["--max_steps"])
    with pytest.raises(ConfigError, match="expected --key"):
        apply_overrides({}, ["max_steps", "3"])


def test_discriminator_grad_clip(tmp_path: Path):
    c = load_train_config(_write(tmp_path, "codec: x\ngrad_clip: 1000\n"))
    assert c.discriminator_grad_clip is None  # the discriminator clips at grad_clip
    c = load_train_config(_write(tmp_path, "codec: x\ndiscriminator_grad_clip: 10\n"))
    assert c.discriminator_grad_clip == 10.0 and isinstance(c.discriminator_grad_clip, float)
    with pytest.raises(ConfigError, match="discriminator_grad_clip=True must be a number"):
        load_train_config(_write(tmp_path, "codec: x\ndiscriminator_grad_clip: true\n"))
    with pytest.raises(ConfigError, match="discriminator_grad_clip"):
        load_train_config(_write(tmp_path, "codec: x\ndiscriminator_grad_clip: ten\n"))


def test_overrides_keep_the_order_of_mappings():
    """The combined discriminator builds its members in config order; overrides must not
    sort them."""
    from codectk.config import apply_overrides

    conf = {"discriminator_conf": {"discriminators": {"mpd": {}, "hifigan_msd": {}, "ms_stft": {}}}}
    out = apply_overrides(conf, ["--max_steps", "3"])
    assert list(out["discriminator_conf"]["discriminators"]) == ["mpd", "hifigan_msd", "ms_stft"]


def test_version_1_loss_conf_is_rewritten_into_sections(tmp_path: Path, caplog):
    """Configs (and model files) written before config version 2 had flat loss_conf keys."""
    text = (
        "codec: dac\nloss: funcodec\nloss_conf:\n  lambda_mel: 2.0\n  lambda_adv: 0.5\n"
        "  mel_windows: [64, 128]\n  power_spec_loss: true\n"
    )
    with caplog.at_level("WARNING"):
        c = load_train_config(_write(tmp_path, text))
    assert c.config_version == CONFIG_VERSION == 2
    assert c.loss_conf == {
        "weights": {"mel": 2.0, "adv": 0.5},
        "mel": {"windows": [64, 128], "power_spec_loss": True},
    }
    assert "loss_conf.lambda_mel -> weights.mel" in caplog.text and "c.yaml" in caplog.text
    save_config(c, tmp_path / "out.yaml")
    assert "config_version: 2" in (tmp_path / "out.yaml").read_text()
    assert load_train_config(tmp_path / "out.yaml") == c
    # a version-2 file keeps its keys: a flat key there is an unknown key of the loss
    flat = {"codec": "dac", "loss": "dac", "loss_conf": {"lambda_mel": 1.0}}
    assert upgrade_config({**flat, "config_version": 2})["loss_conf"] == {"lambda_mel": 1.0}
    assert upgrade_config(flat)["loss_conf"] == {"weights": {"mel": 1.0}}


def test_config_version_errors():
    with pytest.raises(ConfigError, match="config_version 3 is newer"):
        build_train_config({"codec": "dac", "config_version": 3}, where="x.yaml")
    with pytest.raises(ConfigError, match="must be an integer"):
        build_train_config({"codec": "dac", "config_version": "2"}, where="x.yaml")
    clash = {"codec": "dac", "loss": "dac", "loss_conf": {"lambda_mel": 1, "weights": {"mel": 2}}}
    with pytest.raises(ConfigError, match=r"loss_conf: lambda_mel clashes with weights.mel"):
        build_train_config(clash, where="x.yaml")


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(REPO))
        for p in [*REPO.glob("conf/*.yaml"), *REPO.glob("egs/*/codec1/conf/*.yaml")]
    ),
)
def test_shipped_configs_are_current(path: str):
    """Every bundled training config is written in the current layout (no key moves)."""
    data = load_yaml(REPO / path)
    if "codec" not in data:
        pytest.skip("not a training config")
    upgraded = upgrade_config(data, where=path)
    assert upgraded.get("loss_conf") == data.get("loss_conf")
    assert upgraded.get("codec_conf") == data.get("codec_conf")
    config = build_train_config(data, where=path)
    losses = importlib.import_module("codectk.losses")
    losses.LOSSES.build(config.loss, {"sample_rate": 16000, **config.loss_conf})


def test_version_1_codec_conf_moves_by_the_codec_table(monkeypatch):
    """The codec_conf key map: a table per codec, applied to an inner codec's conf too."""
    monkeypatch.setitem(
        config_module._CODEC_SECTIONS_V2,
        "outer",
        {"n_filters": "encoder.n_filters", "ema_decay": "quantizer.decay"},
    )
    monkeypatch.setitem(config_module._CODEC_SECTIONS_V2, "inner", {"n_q": "quantizer.n_codebooks"})
    monkeypatch.setitem(
        config_module._INNER_CODEC_CONFS, "outer", (("inner_codec", "inner_conf", "inner"),)
    )
    data = {
        "codec": "outer",
        "codec_conf": {
            "n_filters": 8,
            "ema_decay": 0.9,
            "sample_rate": 16000,
            "inner_conf": {"n_q": 4},
        },
    }
    conf = upgrade_config(data, where="m.pt")["codec_conf"]
    assert conf == {
        "sample_rate": 16000,
        "inner_conf": {"quantizer": {"n_codebooks": 4}},
        "encoder": {"n_filters": 8},
        "quantizer": {"decay": 0.9},
    }
    assert data["codec_conf"]["n_filters"] == 8  # the input is not modified
    clash = {"codec": "outer", "codec_conf": {"n_filters": 8, "encoder": {"n_filters": 4}}}
    with pytest.raises(ConfigError, match="n_filters clashes with encoder.n_filters"):
        upgrade_config(clash, where="m.pt")
