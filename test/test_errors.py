"""codectk.errors.check_choice: the one check of a value against a fixed set of choices."""

from __future__ import annotations

import pytest

from codectk.errors import CodectkError, ConfigError, check_choice


def test_a_choice_passes():
    check_choice("norm", "weight_norm", ("weight_norm", "none"))
    check_choice("norm", None, ("slaney", None))
    check_choice("resblock", "2", {"1": 1, "2": 2})  # a dict: its keys


def test_the_message_names_the_value_and_the_choices_in_order():
    with pytest.raises(ValueError) as info:
        check_choice("loss_type", "wgan", ("hinge", "mse", "hinge_linear"))
    assert type(info.value) is ValueError
    assert str(info.value) == (
        "loss_type 'wgan' not supported; choose one of ['hinge', 'mse', 'hinge_linear']"
    )
    with pytest.raises(ValueError) as info:
        check_choice("AudioDec vocoder", "v3", {"v0": 0, "v1": 1})
    assert str(info.value) == "AudioDec vocoder 'v3' not supported; choose one of ['v0', 'v1']"


def test_the_error_class_is_the_callers():
    with pytest.raises(ConfigError) as info:
        check_choice("amp", "fp8", ("none", "bf16", "fp16"), ConfigError)
    assert type(info.value) is ConfigError
    assert str(info.value) == "amp 'fp8' not supported; choose one of ['none', 'bf16', 'fp16']"
    with pytest.raises(CodectkError) as info:
        check_choice("--engine", "gpu", ("module", "compiled"), CodectkError)
    assert type(info.value) is CodectkError


def test_an_unhashable_value_is_not_supported_rather_than_a_type_error():
    with pytest.raises(ValueError, match=r"norm \['none'\] not supported; choose one of"):
        check_choice("norm", ["none"], {"none": 0, "weight_norm": 1})
