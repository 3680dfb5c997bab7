"""The harness itself: reference files import by path without their packages' __init__."""

from __future__ import annotations

import sys

import pytest

from test.parity import refs


def test_audiocraft_imports_by_path_without_its_package_init():
    refs.require_package("flashy")
    balancer = refs.import_distribution("audiocraft.losses.balancer", hollow=("audiocraft.losses",))
    assert balancer.Balancer.__module__ == "audiocraft.losses.balancer"
    # the hollow top package never ran audiocraft/__init__.py (which imports the models)
    assert "audiocraft.models" not in sys.modules
    assert not hasattr(sys.modules["audiocraft"], "__version__")


def test_funcodec_distribution_is_unpacked():
    root = refs.distribution("funcodec")
    assert (root / "funcodec" / "version.txt").read_text().strip() == "0.2.0"


def test_missing_module_is_an_error():
    root = refs.distribution("audiocraft")
    with pytest.raises(FileNotFoundError, match="no such module"):
        refs.import_from(root, "audiocraft.nothing_here")


def test_checkout_skips_naming_the_variable(monkeypatch):
    monkeypatch.delenv("CODECTK_REF_AUDIODEC", raising=False)
    with pytest.raises(pytest.skip.Exception, match="CODECTK_REF_AUDIODEC"):
        refs.checkout("CODECTK_REF_AUDIODEC")
