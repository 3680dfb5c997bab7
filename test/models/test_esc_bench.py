"""Smoke run of the ESC benchmark suite (structure, not speed)."""

from codectk.benchmarks import esc
from test.single_thread import one_torch_thread  # noqa: F401


def test_esc_bench_quick_rows():
    rows = esc.run([1], "cpu", quick=True)
    assert [r["name"] for r in rows] == [
        "esc_base_encode_decode_1s",
        "esc_base_encode_decode_1s_bf16",
    ]
    for row in rows:
        assert row["suite"] == "esc" and row["unit"] == "s" and row["threads"] == 1
        assert row["reference_s"] == 3.96 and row["macs_G"] > 0
        assert row["value"] > 0 and row["encode_s"] > 0 and row["decode_s"] > 0
        assert "target" not in row  # targets are for the 10-s runs only
        assert not any(k.startswith("_") for k in row)
    fp32, bf16 = rows
    assert "fp32_floor_s" not in fp32  # the throughput probes run in full mode only
    assert 0 <= bf16["codes_equal"] <= 1 and bf16["precision"] == "bf16"
    # the same codes decoded in bf16 are close to float32 (random weights: about 39 dB)
    assert bf16["snr_db_fp32_codes"] > 25
