"""The metric registry (codectk.eval.metrics): names, columns, default selection, and the
one-line errors for a missing package or a missing transcript."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from codectk.bin import score as score_bin
from codectk.bin.common import run
from codectk.eval import metrics as registry
from codectk.eval.metrics import (
    COLUMNS,
    METRICS,
    MetricUnavailableError,
    check_metrics,
    columns,
    default_metrics,
    parse_metrics,
)

REPO = Path(__file__).resolve().parents[2]
CLASSIC = ["pesq", "stoi", "estoi", "mel_distance", "stft_distance", "si_sdr"]


def _hide(monkeypatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled to the registry."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        registry.importlib.util,
        "find_spec",
        lambda name, *a: None if name in modules else real(name, *a),
    )


def test_every_column_has_unit_direction_and_label():
    assert list(METRICS)[:6] == CLASSIC
    for m in METRICS.values():
        for c in m.columns:
            assert COLUMNS[c].better in ("higher", "lower") and COLUMNS[c].label
    assert columns(["dnsmos", "wer"]) == [
        "dnsmos_sig",
        "dnsmos_bak",
        "dnsmos_ovrl",
        "dnsmos_p808",
        "wer",
        "wer_ref",
        "wer_delta",
    ]
    assert registry.ALIGNED_COLUMNS == ("stoi", "estoi", "mel_distance", "stft_distance", "si_sdr")
    assert parse_metrics("visqol, pesq,visqol") == ["visqol", "pesq"]
    with pytest.raises(ValueError, match=r"metrics \['mos'\] not supported; choose from"):
        parse_metrics("pesq,mos")


def test_default_is_every_installed_metric(monkeypatch):
    assert default_metrics(have_text=True) == list(METRICS)  # all installed here
    assert default_metrics(have_text=False) == [n for n in METRICS if n not in ("wer", "cer")]
    _hide(monkeypatch, "speechmos", "resemblyzer")
    assert default_metrics(have_text=True) == [n for n in METRICS if n not in ("dnsmos", "spk_sim")]


def test_missing_package_names_it_and_the_install_command(monkeypatch, tmp_path, capsys):
    _hide(monkeypatch, "visqol")
    with pytest.raises(
        MetricUnavailableError,
        match=re.escape(
            "metric visqol needs visqol (not installed): tools/venv/bin/pip install -c "
            "tools/venv/constraints.txt visqol-python==3.8.0 (or: make install)"
        ),
    ):
        check_metrics(["pesq", "visqol"], have_text=False)
    with pytest.raises(
        MetricUnavailableError, match="metric wer needs the transcripts: give --text"
    ):
        check_metrics(["wer"], have_text=False)
    argv = ["--ref_scp", "r.scp", "--deg_scp", "d.scp", "--out_dir", str(tmp_path / "o")]
    assert score_bin.main([*argv, "--metrics", "visqol"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith("visqol-python==3.8.0 (or: make install)")
    assert not (tmp_path / "o").exists()
    assert run(lambda _: check_metrics(["visqol"], False)) == 1  # run(): one line, no traceback


def test_pins_match_requirements():
    """The install command names the versions requirements.txt pins."""
    pins = {
        line.split("==")[0].lower(): line.split("==")[1].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for m in METRICS.values():
        for req in m.package.split():
            name, version = req.split("==")
            assert pins.get(name.lower()) == version, (m.name, req)
