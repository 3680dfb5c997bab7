"""Smoke run of the AudioDec benchmark suite (structure, not speed)."""

from codectk.benchmarks import audiodec
from test.single_thread import one_torch_thread  # noqa: F401


def test_audiodec_bench_quick_rows():
    rows = audiodec.run([1], "cpu", quick=True)
    assert len(rows) == 1
    row = rows[0]
    assert row["suite"] == "audiodec" and row["unit"] == "ms" and row["threads"] == 1
    assert row["target"] == 6.0 and row["target_rule"] == "<="
    assert row["value"] > 0 and row["p95_ms"] >= row["p50_ms"] > 0
    assert row["algorithmic_delay_ms"] == 12.5 and row["chunks"] == 80
