from pathlib import Path

import pytest

from codectk.config import ConfigError, apply_overrides, load_train_config, save_config


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_load_and_override(tmp_path: Path):
    p = _write(tmp_path, "codec: soundstream\ncodec_conf: {n_filters: 8}\nmax_steps: 10\n")
    c = load_train_config(
        p, ["--max_steps", "3", "--codec_conf.n_filters=16", "--segment_duration", "0.5"]
    )
    assert c.max_steps == 3 and c.codec_conf == {"n_filters": 16} and c.segment_duration == 0.5
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
