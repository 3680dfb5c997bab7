"""Shared helpers of the benchmark suites (not a suite: modules starting with ``_`` are
skipped by the runner).

:func:`in_subprocess` runs one measurement function in a fresh Python process (the
given interpreter, e.g. the comparison environment's), so that its peak resident memory
(``ru_maxrss``) is its own; :func:`child_main` is that process's side.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "egs/mini_librispeech/codec1/corpus"
COMPARE_PYTHON = REPO / "tools/venv-compare/bin/python"
_MARK = "CODECTK-BENCH-RESULT "


class MeasurementError(RuntimeError):
    """A measurement subprocess failed; the message holds the tail of its output."""


def corpus_files(limit: int | None = None) -> list[Path]:
    """The bundled LibriSpeech FLAC files (16 kHz), sorted by path."""
    files = sorted(CORPUS.glob("LibriSpeech/*/*/*/*.flac"))
    if not files:
        raise FileNotFoundError(f"no FLAC files under {CORPUS}")
    return files[:limit] if limit else files


def speech(seconds: float, sample_rate: int):
    """``seconds`` of bundled speech (utterances concatenated), resampled with soxr.

    Returns:
        np.ndarray: float32 (T,), T = seconds * sample_rate.
    """
    import numpy as np

    from codectk.io.audio import read_audio, resample, to_mono

    chunks, total = [], 0
    for f in corpus_files():
        wav, fs = read_audio(str(f))
        chunks.append(resample(to_mono(wav), fs, sample_rate))
        total += len(chunks[-1])
        if total >= seconds * sample_rate:
            break
    return np.concatenate(chunks)[: int(seconds * sample_rate)]


def best_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] | None = None):
    """Run ``fn`` once to warm up, then ``repeats`` times.

    Returns:
        tuple[float, float]: best wall-clock seconds and best process CPU seconds.
    """
    sync = sync or (lambda: None)
    fn()
    sync()
    walls, cpus = [], []
    for _ in range(max(1, repeats)):
        w, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


@functools.cache
def gemm_peak_gmacs(dtype: str = "fp32", threads: int = 1, n: int = 2048) -> float:
    """Measured multiply-accumulate throughput of this machine, in giga multiply-accumulates
    per second: the best of 5 runs of each of two large, well-shaped kernels in ``dtype``
    (``fp32`` or ``bf16``) on ``threads`` threads, a product of two (n, n) matrices and a
    oneDNN convolution on time-major memory (256 -> 256 channels, kernel 7, 16000 frames).
    A workload of M multiply-accumulates then needs at least about M / this seconds on the
    same threads (a practical roofline bound: the hardware peak is somewhat higher).
    Measured once per process and argument set."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
        cl = torch.channels_last
        x = torch.randn(1, 256, 1, 16000).to(dt).contiguous(memory_format=cl)
        w = torch.randn(256, 256, 1, 7).to(dt).contiguous(memory_format=cl)
        with torch.inference_mode():
            kernels = [
                (lambda: a @ b, n**3),
                (lambda: torch.nn.functional.conv2d(x, w), 16000 * 256 * 256 * 7),
            ]
            best = max(macs / best_time(fn, 5)[0] for fn, macs in kernels)
    finally:
        torch.set_num_threads(saved)
    return best / 1e9


def count_macs(fn: Callable[[], object], model=None) -> float:
    """Multiply-accumulates of the convolutions and matrix products ``fn`` runs
    (``torch.utils.flop_counter``), plus those of the ``nn.LSTM`` layers of ``model``
    (4 H (I + H) per step, layer and direction), which the counter does not see."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _register_mkldnn_conv_flops()
    lstm_macs = [0.0]

    def hook(module, inputs, output):
        x = inputs[0]
        steps = x.shape[:-1].numel()  # T * B (or T for unbatched input)
        dirs = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            i = module.input_size if layer == 0 else module.hidden_size * dirs
            lstm_macs[0] += dirs * steps * 4 * module.hidden_size * (i + module.hidden_size)

    handles = []
    if model is not None:
        handles = [
            m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.LSTM)
        ]
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops() / 2 + lstm_macs[0]


@functools.cache
def _register_mkldnn_conv_flops() -> None:
    """Teach the flop counter ``aten.mkldnn_convolution``, which codectk's time-major
    convolutions call directly (:func:`codectk.nn.conv_kernels.conv1d_time_major`)."""
    import torch
    from torch.utils.flop_counter import conv_flop_count, register_flop_formula

    @register_flop_formula(torch.ops.aten.mkldnn_convolution)
    def _mkldnn_conv_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def in_subprocess(
    target: str,
    kwargs: dict,
    python: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800.0,
) -> dict:
    """Call ``module:function(**kwargs)`` in a fresh process and return its dict.

    The child adds ``peak_rss_MiB`` (its own peak). ``codectk`` is importable in the child
    through ``PYTHONPATH`` (the comparison environment installs it too).

    Args:
        target (str): ``"package.module:function"``; the function returns a JSON-able dict.
        kwargs (dict): JSON-able keyword arguments.
        python: interpreter (default: this one).
        env (dict | None): extra environment variables.
        timeout (float): seconds.

    Returns:
        dict: the function's result plus ``peak_rss_MiB``.

    Raises:
        MeasurementError: non-zero exit, timeout or no result; with the output's tail.
    """
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p
    )
    cmd = [str(python or sys.executable), "-m", "codectk.benchmarks._measure", target]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(kwargs, f)
        args_file = f.name
    try:
        proc = subprocess.run(
            [*cmd, args_file],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"{target} timed out after {timeout:.0f} s") from None
    finally:
        os.unlink(args_file)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-8:]
        raise MeasurementError(
            f"{target} failed (exit {proc.returncode}): " + " | ".join(tail)[-1500:]
        )
    return json.loads(lines[-1][len(_MARK) :])


def child_main(argv: list[str]) -> int:
    """``python -m codectk.benchmarks._measure module:function args.json``."""
    target, args_file = argv
    module, func = target.split(":")
    kwargs = json.loads(Path(args_file).read_text())
    result = getattr(importlib.import_module(module), func)(**kwargs)
    result["peak_rss_MiB"] = peak_rss_mib()
    print(_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
