"""codectk.registry.preset: presets that state only what differs from the class defaults."""

from __future__ import annotations

import pytest

from codectk.errors import ConfigError
from codectk.models.soundstream import SoundStream, soundstream_24khz_conf, soundstream_tiny_conf
from codectk.registry import build_section, define_preset, preset


class Net:
    def __init__(self, width: int = 8, rates: list[int] | None = None, name: str = "a"):
        self.width, self.rates, self.name = width, rates, name


def test_preset_layers_defaults_base_changes_and_overrides():
    assert preset(Net, "p") == {"width": 8, "rates": None, "name": "a"}
    base = preset(Net, "base", rates=[2, 4])
    assert base == {"width": 8, "rates": [2, 4], "name": "a"}
    small = preset(Net, "small", base=base, overrides={"name": "b"}, width=2)
    assert small == {"width": 2, "rates": [2, 4], "name": "b"}
    small["rates"].append(8)  # a fresh copy: the base is untouched
    assert base["rates"] == [2, 4]


def test_preset_checks_names_and_types():
    with pytest.raises(ConfigError, match=r"tiny: unknown key\(s\) \['depth'\]"):
        preset(Net, "tiny", depth=3)
    with pytest.raises(ConfigError, match="tiny: width='x' is not a valid"):
        preset(Net, "tiny", overrides={"width": "x"})


def test_family_presets_build_and_state_the_paper_model():
    conf = soundstream_24khz_conf()
    assert conf["encoder"]["ratios"] == [8, 5, 4, 2] and conf["quantizer"]["n_codebooks"] == 8
    tiny = soundstream_tiny_conf(quantizer={"n_codebooks": 2})
    assert tiny["quantizer"] == {"n_codebooks": 2, "codebook_size": 256, "kmeans_iters": 10}
    assert tiny["sample_rate"] == 16000
    assert SoundStream(**tiny).hop_length == 320


def test_a_preset_class_has_its_base_arguments_with_its_defaults():
    import inspect

    from codectk.models.encodec import EnCodec
    from codectk.models.soundstream import SOUNDSTREAM
    from codectk.registry import preset_signature

    params = inspect.signature(SoundStream).parameters
    assert set(params) == set(inspect.signature(EnCodec).parameters)
    assert all(params[k].default == v for k, v in SOUNDSTREAM.items())
    assert params["sample_rate"].default == 24000 and params["channels"].annotation is int
    assert params["encoder"].default["dimension"] == 512
    with pytest.raises(ConfigError, match="channels='x' is not a valid"):
        preset(SoundStream, "p", channels="x")
    with pytest.raises(ValueError, match=r"\['depth'\] are not arguments of EnCodec"):
        preset_signature(EnCodec, {"depth": 2})


def test_define_preset_makes_a_documented_preset_function():
    def widget(a: int = 1, b: list[int] | None = None, c: str = "x"):
        return {"a": a, "b": b, "c": c}

    base = define_preset(widget, "base_conf", "The base.", b=[1, 2])
    tiny = define_preset(widget, "tiny_conf", "A tiny one.\n\n    Two lines.", base=base, a=3)
    assert base() == {"a": 1, "b": [1, 2], "c": "x"}
    assert tiny() == {"a": 3, "b": [1, 2], "c": "x"}
    assert tiny(c="y")["c"] == "y"
    assert tiny()["b"] is not tiny()["b"]  # fresh dicts
    assert tiny.__name__ == "tiny_conf" and tiny.__module__ == widget.__module__
    assert tiny.__doc__.startswith("A tiny one.") and "**overrides" in tiny.__doc__
    with pytest.raises(ConfigError, match=r"tiny_conf: unknown key\(s\) \['d'\]"):
        tiny(d=1)
    with pytest.raises(ConfigError, match="wrong_conf: a='3'"):
        define_preset(widget, "wrong_conf", "Badly typed.", a="3")


def test_build_section_checks_keys_types_and_what_the_caller_sets():
    def loss(sample_rate: int, windows: list[int] | None = None):
        return sample_rate, windows

    assert build_section(loss, None, "loss_conf.mel", sample_rate=16000) == (16000, None)
    assert build_section(loss, {"windows": [64]}, "x", sample_rate=8000) == (8000, [64])
    with pytest.raises(ConfigError, match=r"loss_conf.mel: unknown key\(s\) \['hop'\]"):
        build_section(loss, {"hop": 1}, "loss_conf.mel", sample_rate=16000)
    with pytest.raises(ConfigError, match=r"x: windows=64 is not a valid"):
        build_section(loss, {"windows": 64}, "x", sample_rate=16000)
    with pytest.raises(ConfigError, match=r"\['sample_rate'\] are set by codectk"):
        build_section(loss, {"sample_rate": 1}, "x", sample_rate=16000)
