"""The ``train_gpu`` bench suite: skipped rows without CUDA, every paper config valid
for every variant, and a quick end-to-end run on the CPU (tiny DAC)."""

from __future__ import annotations

import pytest

from codectk.benchmarks import _runner, train_gpu
from codectk.benchmarks import _train_gpu_jobs as jobs


def test_without_cuda_every_row_is_skipped_saying_why(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    rows = train_gpu.run([1, 2], "cpu", quick=False)
    assert len(rows) == len(jobs.CONFIGS) * len(jobs.VARIANTS) * len(jobs.PRECISIONS)
    assert all(r["value"] is None and "no CUDA device" in r["skipped"] for r in rows)
    assert {_runner.verdict(r) for r in rows} == {"skipped"}
    assert "train_gpu" in _runner.discover()


@pytest.mark.parametrize("config", list(jobs.CONFIGS))
def test_every_paper_config_builds_for_every_variant(config: str):
    for variant in jobs.VARIANTS:
        for precision in jobs.PRECISIONS:
            conf = jobs.train_config(
                config, jobs.variant_overrides(variant, precision, "cuda"), False
            )
            assert conf.amp == ("bf16" if precision == "bf16" else "none")
            assert conf.compile == (variant == "compiled")
            assert conf.discriminator_batch == ("none" if variant == "host" else "both")
            layout = "channels_last" if variant == "channels_last" else "contiguous"
            assert conf.discriminator_memory_format == layout


def test_unknown_selection_is_an_error(monkeypatch):
    monkeypatch.setenv("CODECTK_TRAIN_GPU_CONFIGS", "dac_16k,nope")
    with pytest.raises(ValueError, match=r"unknown \['nope'\]; choose from"):
        train_gpu._selected("CODECTK_TRAIN_GPU_CONFIGS", jobs.CONFIGS)


def test_quick_run_on_the_cpu_end_to_end():
    rows = train_gpu.run([1], "cpu", quick=True)
    by = {(r["name"], r["metric"]): r for r in rows}
    assert not [r for r in rows if r.get("error")], [r["error"] for r in rows if r.get("error")]
    for variant in ("host", "sync_free"):
        for precision in ("bf16", "fp32"):
            name = f"dac_16k_tiny {variant} {precision}"
            assert by[name, "steps/s"]["value"] > 0
            assert by[name, "audio s/s"]["value"] > 0
            assert by[name, "peak resident memory"]["value"] > 0
            assert "CUDA only" in by[name, "host syncs per step"]["skipped"]
    # the sync-free step reads nothing on the host; the host-checking step does
    assert by["dac_16k_tiny sync_free bf16", "host reads per step"]["value"] == 0
    assert by["dac_16k_tiny host bf16", "host reads per step"]["value"] > 0
    steps = by["dac_16k_tiny sync_free bf16", "steps/s"]
    assert (steps["target"], steps["target_rule"]) == (8.0, ">=")
    assert by["dac_16k_tiny sync_free bf16", "host syncs per step"]["target"] == 1.0
    ratio = by["dac_16k_tiny bf16 / fp32", "speed ratio"]
    assert ratio["target"] == 1.3 and ratio["value"] > 0
    assert by["dac_16k_tiny optimised / host", "speed ratio"]["target"] == 2.0
    anchor = by["DAC authors' step", "steps/s"]
    assert (
        anchor["value"] is None
        and "install_compare_env" in anchor["skipped"]
        or (anchor["value"] > 0 and by["dac_16k_tiny optimised / DAC authors' step", "speed ratio"])
    )
    inference = by["dac_16k_tiny inference bf16 / fp32 batch 1", "time ratio"]
    assert inference["value"] > 0 and inference["target_rule"] == "<="
    assert all(_runner.verdict(r) in ("pass", "FAIL", "skipped", "") for r in rows)
