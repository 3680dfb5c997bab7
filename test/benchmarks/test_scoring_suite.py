"""The scoring suite of make bench (codectk.benchmarks.scoring), quick, on one metric and one
that is not installed."""

from __future__ import annotations

import importlib.util

from codectk.benchmarks import _runner, scoring
from codectk.eval import metrics as registry


def test_scoring_suite_quick_rows(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        registry.importlib.util, "find_spec", lambda n, *a: None if n == "visqol" else real(n, *a)
    )
    monkeypatch.setattr(registry, "METRICS", {n: registry.METRICS[n] for n in ("si_sdr", "visqol")})
    rows = scoring.run([1], "cpu", quick=True)
    assert [r["name"] for r in rows] == ["si_sdr", "visqol", "delay compensation"]
    for r in rows:
        assert (r["metric"], r["unit"], r["threads"]) == ("cost per audio hour", "s/h", 1)
    for r in (rows[0], rows[2]):
        assert r["value"] > 0 and r["utterances"] == 1 and r["audio_s"] > 4
        assert 0 < r["rtf"] < 1 and _runner.verdict(r) == ""
    assert rows[0]["first_utt_s"] > 0 and rows[0]["peak_rss_MiB"] > 0
    assert rows[1]["value"] is None and _runner.verdict(rows[1]) == "skipped"
    assert "visqol-python==3.8.0" in rows[1]["skipped"]
    assert scoring.run([1], "cuda", quick=True) == []
