"""Training speed on a GPU (issue 19): run ``python -m codectk.bin.bench --suites
train_gpu`` on a machine with CUDA (each configuration in a fresh process; limit the
work with ``CODECTK_TRAIN_GPU_CONFIGS=dac_16k,encodec_24k`` and
``CODECTK_TRAIN_GPU_VARIANTS=sync_free,compiled``); without CUDA the rows are skipped,
saying so.

Per paper-size config (DAC 16 kHz, EnCodec 24 kHz, SoundStream 24 kHz, ESC-Base,
HiFi-Codec 16 kHz, symAD 48 kHz, LaDiffCodec's diffusion U-Net), batch and segment as
configured, batches preloaded on the device (the loader is not measured), through the
recipe trainer's own step (``Trainer._train_step`` plus its step log):

* variants: ``host`` (today's path before issue 19: foreach optimizers with a host check
  of every loss and norm, real and fake in separate discriminator calls), ``sync_free``
  (fused optimizers with the device-side skip, one discriminator call: the defaults),
  ``channels_last`` (``sync_free`` + ``discriminator_memory_format: channels_last``),
  ``compiled`` (``sync_free`` + ``compile: true``); each in bf16 autocast and in float32
  (``tf32``: torch's defaults, cuDNN convolutions in TF32, matrix products in float32);
* metrics: steps/s and audio s/s over the timed steps; host reads per step (calls that
  read a tensor's value on the host: ``item``, ``float``, ``bool``...; the foreach
  optimizers' reads of their CPU step counters included, which are not device syncs);
  kernel launches, host
  synchronisations (``cudaStreamSynchronize``, ``cudaDeviceSynchronize``,
  ``cudaEventSynchronize``, blocking ``cudaMemcpy``) and GPU busy fraction (union of
  kernel and copy intervals over the steps' wall time) per non-logging step from
  ``torch.profiler``; peak allocated memory;
* ratios: bf16 over TF32, the best optimised variant over ``host``, and codectk's DAC
  over the DAC authors' step (:mod:`codectk.benchmarks._dac_reference_step`, run in the
  comparison environment with their settings: float32, ``cudnn.benchmark``);
* inference: encode + decode of 10 s at batch 1, float32 and bf16
  (``prepare_for_inference(precision=...)``), DAC 16 kHz and EnCodec 24 kHz.

The targets are issue 19's: DAC >= 8 steps/s in bf16, bf16 >= 1.3x TF32, GPU busy >= 90%,
<= 1 host synchronisation per non-logging step, >= 2x the authors' DAC step, the other
families >= 2x today's path, bf16 inference no slower than float32. ``quick`` on the CPU
runs the tiny DAC for a few steps (the test of this suite): steps/s, host reads per
step (the tensor reads a GPU would wait for) and peak resident memory are measured
there, the CUDA-only metrics are skipped rows.
"""

from __future__ import annotations

import os
from pathlib import Path

from codectk.benchmarks._measure import COMPARE_PYTHON, MeasurementError, in_subprocess
from codectk.benchmarks._train_gpu_jobs import (
    CONFIGS,
    INFERENCE,
    PRECISIONS,
    QUICK_CONFIGS,
    VARIANTS,
)

BUILD_HINT = "bash tools/install_compare_env.sh"
JOBS = "codectk.benchmarks._train_gpu_jobs"
OPTIMISED = ("sync_free", "channels_last", "compiled")  # compared with "host"


def _selected(env: str, choices) -> list[str]:
    value = os.environ.get(env)
    if not value:
        return list(choices)
    chosen = [c for c in value.split(",") if c]
    unknown = sorted(set(chosen) - set(choices))
    if unknown:
        raise ValueError(f"{env}: unknown {unknown}; choose from {list(choices)}")
    return chosen


def _rows_of(config, variant, precision, r, device, threads, dac) -> list[dict]:
    common = dict(config=config, variant=variant, precision=precision, device=device)
    common["threads"] = threads
    name = f"{config} {variant} {precision}"
    optimised = variant != "host" and precision == "bf16"
    rows = [
        dict(name=name, metric="steps/s", value=r["steps_per_s"], unit="steps/s", **common),
        dict(name=name, metric="audio s/s", value=r["audio_s_per_s"], unit="audio s/s", **common),
        dict(
            name=name,
            metric="host reads per step",
            value=r["host_reads_per_step"],
            unit="reads",
            **common,
        ),
    ]
    for key, metric, unit in (
        ("launches_per_step", "kernel launches per step", "launches"),
        ("syncs_per_step", "host syncs per step", "syncs"),
        ("busy_fraction", "GPU busy fraction", "fraction"),
        ("peak_MiB", "peak memory", "MiB"),
    ):
        row = dict(name=name, metric=metric, value=r.get(key), unit=unit, **common)
        if key == "peak_MiB" and device != "cuda":
            row.update(value=r.get("peak_rss_MiB"), metric="peak resident memory")
        elif r.get(key) is None:
            row["skipped"] = "CUDA only (torch.profiler's CUDA activity)"
        rows.append(row)
    if dac and optimised:
        targets = {"steps/s": 8.0, "GPU busy fraction": 0.9}
        for row in rows:
            if row["metric"] in targets:
                row.update(target=targets[row["metric"]], target_rule=">=")
    if variant != "host":
        for row in rows:
            if row["metric"] == "host syncs per step":
                row.update(target=1.0, target_rule="<=")
    return rows


def _no_steps(name: str, threads, device: str, **why) -> dict:
    """The ``steps/s`` row of a training run that gave no value; ``why``: ``skipped=`` or
    ``error=`` (the reason)."""
    return dict(
        name=name,
        metric="steps/s",
        value=None,
        unit="steps/s",
        threads=threads,
        device=device,
        **why,
    )


def _skipped(reason: str, device: str, threads) -> list[dict]:
    rows = []
    for config in CONFIGS:
        for variant in VARIANTS:
            for precision in PRECISIONS:
                name = f"{config} {variant} {precision}"
                rows.append(_no_steps(name, threads, device, skipped=reason))
    return rows


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """Rows for every config, variant and precision (see module doc)."""
    import torch

    if device != "cuda" and not quick:
        if torch.cuda.is_available():
            return []  # the runner's cuda pass measures this suite
        return _skipped("no CUDA device visible (torch.cuda.is_available() is False)", device, 1)
    th = threads[0]
    configs = list(QUICK_CONFIGS) if quick else _selected("CODECTK_TRAIN_GPU_CONFIGS", CONFIGS)
    variants = _selected("CODECTK_TRAIN_GPU_VARIANTS", VARIANTS)
    if quick and device != "cuda":  # inductor's C++ compilation takes minutes on a CPU
        variants = [v for v in variants if v != "compiled"]
    steps, warmup = (2, 1) if quick else (20, 5)
    env = {"OMP_NUM_THREADS": str(th)}
    rows, speed = [], {}
    for config in configs:
        for variant in variants:
            for precision in PRECISIONS:
                kwargs = dict(
                    config=config,
                    variant=variant,
                    precision=precision,
                    device=device,
                    steps=steps,
                    warmup=warmup + (2 if variant == "compiled" else 0),
                    quick=quick,
                )
                label = "fp32" if precision == "tf32" and device != "cuda" else precision
                try:
                    r = in_subprocess(f"{JOBS}:train_job", kwargs, env=env)
                except MeasurementError as exc:
                    name = f"{config} {variant} {label}"
                    rows.append(_no_steps(name, th, device, error=str(exc)))
                    continue
                speed[config, variant, precision] = r["steps_per_s"]
                dac = config.startswith("dac_16k")
                rows += _rows_of(config, variant, label, r, device, th, dac)
        rows += _ratio_rows(config, speed, device, th, "tf32" if device == "cuda" else "fp32")
    rows += _anchor_rows(configs, speed, device, th, steps, warmup, quick)
    rows += _inference_rows(device, th, quick)
    return rows


def _ratio_rows(config: str, speed: dict, device: str, th: int, wide: str) -> list[dict]:
    rows = []
    common = dict(config=config, threads=th, device=device, unit="x")
    best = max((speed.get((config, v, "bf16")) or 0.0) for v in OPTIMISED)
    if best and speed.get((config, "sync_free", "tf32")):
        rows.append(
            dict(
                name=f"{config} bf16 / {wide}",
                metric="speed ratio",
                value=speed[config, "sync_free", "bf16"] / speed[config, "sync_free", "tf32"],
                **common,
                **({"target": 1.3, "target_rule": ">="} if config.startswith("dac") else {}),
            )
        )
    if best and speed.get((config, "host", "bf16")):
        rows.append(
            dict(
                name=f"{config} optimised / host",
                metric="speed ratio",
                value=best / speed[config, "host", "bf16"],
                target=2.0,
                target_rule=">=",
                **common,
            )
        )
    return rows


def _anchor_rows(configs, speed, device, th, steps, warmup, quick) -> list[dict]:
    dac = next((c for c in configs if c.startswith("dac_16k")), None)
    if dac is None:
        return []
    row = dict(name="DAC authors' step", metric="steps/s", unit="steps/s", threads=th)
    row.update(device=device, config="descript-audio-codec 1.0.0 scripts/train.py:225-280")
    if not Path(COMPARE_PYTHON).exists():
        return [{**row, "value": None, "skipped": f"no comparison environment: {BUILD_HINT}"}]
    try:
        r = in_subprocess(
            f"{JOBS}:reference_job",
            dict(device=device, steps=steps, warmup=warmup, quick=quick),
            python=COMPARE_PYTHON,
        )
    except MeasurementError as exc:
        return [{**row, "value": None, "error": str(exc)}]
    rows = [
        {**row, "value": r["steps_per_s"], **{k: r[k] for k in ("batch_size", "segment_samples")}}
    ]
    best = max((speed.get((dac, v, "bf16")) or 0.0) for v in OPTIMISED)
    if best:
        rows.append(
            dict(
                name=f"{dac} optimised / DAC authors' step",
                metric="speed ratio",
                value=best / r["steps_per_s"],
                unit="x",
                threads=th,
                device=device,
                target=2.0,
                target_rule=">=",
            )
        )
    return rows


def _inference_rows(device: str, th: int, quick: bool) -> list[dict]:
    rows, seconds = [], 2.0 if quick else 10.0
    for config in ["dac_16k_tiny"] if quick else list(INFERENCE):
        times = {}
        for precision in ("fp32", "bf16"):
            kwargs = dict(
                config=config, device=device, precision=precision, seconds=seconds, quick=quick
            )
            name = f"{config} inference {precision} batch 1"
            try:
                r = in_subprocess(f"{JOBS}:inference_job", kwargs)
            except MeasurementError as exc:
                rows.append(
                    dict(name=name, metric="encode+decode", value=None, unit="ms", error=str(exc))
                )
                continue
            times[precision] = r["ms"]
            rows.append(
                dict(
                    name=name,
                    metric="encode+decode",
                    value=r["ms"],
                    unit="ms",
                    threads=th,
                    device=device,
                    audio_seconds=seconds,
                )
            )
        if len(times) == 2:
            rows.append(
                dict(
                    name=f"{config} inference bf16 / fp32 batch 1",
                    metric="time ratio",
                    value=times["bf16"] / times["fp32"],
                    unit="x",
                    threads=th,
                    device=device,
                    target=1.0,
                    target_rule="<=",
                )
            )
    return rows
