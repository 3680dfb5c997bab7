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
    assert row["engine"] == "module" and row["precision"] == "fp32"
    # 163.8 M in the convolutions + 1.0 M in the 8 RVQ distance GEMMs (2 x 64 x 1024 each)
    assert row["macs_M"] == 164.8
    assert 0 < row["bf16_floor_ms"] < row["value"] and 0 < row["fp32_floor_ms"] < row["value"]
