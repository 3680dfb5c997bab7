"""Smoke run of the ESC benchmark suite (structure, not speed)."""

from codectk.benchmarks import esc
from test.single_thread import one_torch_thread  # noqa: F401


def test_esc_bench_quick_rows():
    rows = esc.run([1], "cpu", quick=True)
    assert len(rows) == 1
    row = rows[0]
    assert row["suite"] == "esc" and row["unit"] == "s" and row["threads"] == 1
    assert row["name"] == "esc_base_encode_decode_1s" and row["reference_s"] == 3.96
    assert row["value"] > 0 and row["encode_s"] > 0 and row["decode_s"] > 0
    assert "target" not in row  # targets are for the 10-s runs only
