"""``python -m codectk.bin.bench``: suite discovery, JSON + markdown output, error rows;
the smoke runs of the reference and data-stage suites; the codecs suite's rows from faked
measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codectk.benchmarks import _runner, codecs, data_stages, reference
from codectk.bin import bench


def test_discover_finds_the_suites():
    found = _runner.discover()
    assert {"codecs", "data_stages", "reference"} <= set(found)
    assert not any(name.startswith("_") for name in found)
    assert _runner.discover("test.benchmarks.fake_suites") == ["broken", "ok"]


def test_runner_writes_json_and_markdown_and_error_rows(tmp_path: Path):
    out, doc = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    argv = ["--package", "test.benchmarks.fake_suites", "--quick", "--threads", "1"]
    assert bench.main([*argv, "--out", str(out), "--doc", str(doc)]) == 0
    report = json.loads(out.read_text())
    assert report["suites"] == ["broken", "ok"]
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"]
    rows = {(r["suite"], r["name"]): r for r in report["rows"]}
    assert rows[("ok", "fast")]["quick"] is True and rows[("ok", "fast")]["threads"] == 1
    broken = rows[("broken", "suite failed")]
    assert broken["metric"] == "error" and "broken on purpose" in broken["error"]
    assert [_runner.verdict(r) for r in report["rows"]] == ["error", "pass", "FAIL"]
    text = doc.read_text()
    assert "## broken" in text and "## ok" in text and "| error |" in text
    assert "| fast [1] | time | 1 | cpu | 1 | s | <= 2 | pass |" in text
    assert "python -m codectk.bin.bench --package" in text


def test_unknown_suite_is_an_error(tmp_path: Path):
    with pytest.raises(SystemExit):
        bench.main(["--package", "test.benchmarks.fake_suites", "--suites", "nope"])


def test_reference_rows_skipped_without_compare_env(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(reference, "COMPARE_PYTHON", tmp_path / "absent/python")
    rows = reference.run([1, 2], "cpu", quick=True)
    assert len(rows) == 2 * len(reference.MODELS)
    assert all(r["value"] is None and "install_compare_env.sh" in r["skipped"] for r in rows)
    assert _runner.verdict(rows[0]) == "skipped"


def test_data_stages_quick_structure():
    rows = data_stages.run([1], "cpu", quick=True)
    names = [(r["name"], r["metric"]) for r in rows]
    assert names == [
        ("wav dump (stage 2)", "throughput"),
        ("dump ceiling (read+soxr+write)", "throughput"),
        ("wav dump (stage 2)", "time vs ceiling"),
        ("scoring (stage 7)", "throughput"),
        ("score ceiling (read+soxr)", "throughput"),
    ]
    assert all(r["value"] > 0 and r["unit"] for r in rows)
    assert rows[2]["target"] == 1.5 and rows[2]["target_rule"] == "<="


def test_codecs_rows_from_faked_jobs(monkeypatch):
    """The rows the codecs suite builds from its jobs' results (no measurement run)."""
    result = dict(seconds=1.0, cpu_seconds=1.5, peak_rss_MiB=300.0, parameters_M=2.0)
    result.update(bitrate_kbps=6.0, audio_s_per_s=4.0, steps_per_s=1.0, batch_size=2)
    result.update(segment_seconds=1.0)
    monkeypatch.setattr(codecs, "in_subprocess", lambda target, kwargs: result)
    rows = codecs.run([1], "cpu", quick=True)
    assert [r["metric"] for r in rows] == [
        "encode+decode RTF",
        "encode+decode peak RSS",
        "training throughput",
    ]
    assert rows[0] == dict(
        name="soundstream_16k_tiny",
        metric="encode+decode RTF",
        value=0.5,
        unit="x real time",
        cpu_seconds=1.5,
        threads=1,
        device="cpu",
        audio_seconds=2.0,
        parameters_M=2.0,
        bitrate_kbps=6.0,
    )
