"""The benchmark runner behind ``make bench`` (``python -m codectk.bin.bench``).

Every module of :mod:`codectk.benchmarks` (found with ``pkgutil``; names starting with
``_`` are helpers, this one included) is a suite with
``run(threads, device, quick) -> list[dict]`` (see :mod:`codectk.benchmarks`). Each suite
runs in its own process (and starts a fresh one per measurement, for clean memory peaks),
on the CPU with each thread count and, when a GPU is present, on CUDA with all cores. A
suite that raises, or whose process dies, gives one ``error`` row with the message
instead of stopping the run. The rows go to a JSON report (machine, command, rows) and,
as one table per suite with value, target and pass/fail, to a markdown page.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import pkgutil
import platform
import time
from pathlib import Path

from codectk.benchmarks._measure import MeasurementError, in_subprocess
from codectk.io.fileio import atomic_write
from codectk.version import __version__

ROW_KEYS = ("suite", "name", "metric", "value", "unit", "threads", "device")
_DOC_COLUMNS = ("name", "metric", "threads", "device", "value", "unit", "target", "result")


def discover(package: str = "codectk.benchmarks") -> list[str]:
    """Suite names (module names without a leading ``_``) in ``package``, sorted."""
    pkg = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def run_suite(package: str, suite: str, threads: list[int], device: str, quick: bool) -> dict:
    """Import and run one suite (in the suite's own process, see :func:`main`).

    Returns:
        dict: ``{"rows": [...]}`` with ``suite`` filled in where missing.
    """
    module = importlib.import_module(f"{package}.{suite}")
    rows = module.run(threads=threads, device=device, quick=quick)
    return {"rows": [{"suite": suite, **r} for r in rows]}


def error_row(suite: str, device: str, message: str) -> dict:
    """The row that stands for a suite that failed."""
    return {
        "suite": suite,
        "name": "suite failed",
        "metric": "error",
        "value": None,
        "unit": "",
        "threads": None,
        "device": device,
        "error": message,
    }


def rtf_row(name: str, r: dict, audio_seconds: float, /, **context) -> dict:
    """The ``encode+decode RTF`` row of a timed encode + decode of ``audio_seconds`` of
    audio: ``r["seconds"]`` (wall time) over the audio duration, in ``x real time``, with
    ``r["cpu_seconds"]`` and the ``context`` keys (threads, device...; the parameters are
    positional-only, so a context key may be named ``audio_seconds`` too)."""
    return dict(
        name=name,
        metric="encode+decode RTF",
        value=r["seconds"] / audio_seconds,
        unit="x real time",
        cpu_seconds=round(r["cpu_seconds"], 3),
        **context,
    )


def verdict(row: dict) -> str:
    """``pass`` / ``FAIL`` against the row's target, ``error``, ``skipped`` or ``""``."""
    if row.get("metric") == "error" or row.get("error"):
        return "error"
    if row.get("skipped"):
        return "skipped"
    target, rule, value = row.get("target"), row.get("target_rule"), row.get("value")
    if target is None or rule is None or value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "FAIL"
    ok = value <= target if rule == "<=" else value >= target
    return "pass" if ok else "FAIL"


def machine() -> dict:
    """CPU model, cores, OS, torch / codectk versions and the GPU (if any)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 1,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "codectk": __version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(report: dict) -> str:
    """docs/benchmarks.md: machine, command, then one table per suite.

    Columns: name, metric, threads, device, value, unit, target (``<= x`` / ``>= x``),
    result; the remaining keys of a row are listed under the table.
    """
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m codectk.bin.bench`); do not edit by hand.",
        "",
        f"- date: {report['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['os']}"
        + (f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU"),
        f"- versions: codectk {m['codectk']}, torch {m['torch']}, Python {m['python']}",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s)",
        "",
    ]
    for suite in report["suites"]:
        rows = [r for r in report["rows"] if r["suite"] == suite]
        lines += [f"## {suite}", ""]
        doc = report.get("suite_docs", {}).get(suite)
        if doc:
            lines += [doc, ""]
        lines.append("| " + " | ".join(_DOC_COLUMNS) + " |")
        lines.append("|" + "---|" * len(_DOC_COLUMNS))
        notes = []
        for i, r in enumerate(rows, 1):
            target = (
                f"{r['target_rule']} {_fmt(r['target'])}" if r.get("target") is not None else ""
            )
            cells = [
                f"{r.get('name', '')} [{i}]",
                r.get("metric", ""),
                _fmt(r.get("threads")),
                r.get("device") or "",
                _fmt(r.get("value")),
                r.get("unit", ""),
                target,
                verdict(r),
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
            extra = {k: v for k, v in r.items() if k not in ROW_KEYS + ("target", "target_rule")}
            if extra:
                notes.append(f"[{i}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in extra.items()))
        if notes:
            lines += ["", *[f"- {n}" for n in notes]]
        lines.append("")
    return "\n".join(lines)


def _suite_doc(package: str, suite: str) -> str:
    """First paragraph of the suite's module docstring (imported without running it)."""
    try:
        doc = importlib.import_module(f"{package}.{suite}").__doc__ or ""
    except Exception as exc:  # reported as the error row already
        return f"(cannot import: {exc})"
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def run_benchmarks(
    suites: list[str],
    threads: list[int],
    quick: bool,
    command: str,
    package: str = "codectk.benchmarks",
) -> dict:
    """Run ``suites`` of ``package``, each in its own process, on the CPU with ``threads``
    and on CUDA (all cores) when a GPU is present; print each row as it comes.

    Args:
        suites (list[str]): suite names (:func:`discover`).
        threads (list[int]): CPU thread counts.
        quick (bool): short smoke runs.
        command (str): the command line, for the report.
        package (str): package holding the suites (tests use their own).

    Returns:
        dict: the report: ``date``, ``command``, ``elapsed_s``, ``machine``, ``suites``,
        ``suite_docs`` and ``rows`` (a failed suite gives an :func:`error_row`).
    """
    t0 = time.perf_counter()
    info = machine()
    cores = os.cpu_count() or 1
    devices = [("cpu", threads)] + ([("cuda", [cores])] if info["cuda"] else [])
    rows = []
    for suite in suites:
        for device, th in devices:
            print(f"bench: {suite} on {device} (threads {th})", flush=True)
            try:
                out = in_subprocess(
                    f"{__name__}:run_suite",
                    dict(package=package, suite=suite, threads=th, device=device, quick=quick),
                    timeout=3 * 3600,
                )
                new = out["rows"]
            except MeasurementError as exc:
                new = [error_row(suite, device, str(exc))]
            for r in new:
                print("  " + json.dumps(r), flush=True)
            rows += new
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": info,
        "suites": suites,
        "suite_docs": {s: _suite_doc(package, s) for s in suites},
        "rows": rows,
    }


def write_report(report: dict, out: str | os.PathLike, doc: str | os.PathLike | None) -> None:
    """Write the report as JSON to ``out`` and, unless ``doc`` is empty, as markdown
    (:func:`render_markdown`) to ``doc``."""
    with atomic_write(out) as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")
    if doc:
        with atomic_write(doc) as f:
            f.write(render_markdown(report))
        print(f"wrote {doc}")
