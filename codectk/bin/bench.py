"""``make bench``: run the benchmark suites, write the results and docs/benchmarks.md.

Usage::

    python -m codectk.bin.bench [--suites reference,data_stages] [--quick]
        [--out bench/results/latest.json] [--doc docs/benchmarks.md]

Every module of :mod:`codectk.benchmarks` (found with ``pkgutil``; names starting with
``_`` are helpers) is a suite with ``run(threads, device, quick) -> list[dict]`` (see
:mod:`codectk.benchmarks`). Each suite runs in its own process (and starts a fresh one per
measurement, for clean memory peaks), on the CPU with 1 thread and with all cores, and
on CUDA with all cores when a GPU is present. A suite that raises, or whose process dies,
gives one ``error`` row with the message instead of stopping the run; a suite module that
does not exist yet is simply absent. The rows go to ``--out`` (JSON: machine, command,
rows) and, as one table per suite with value, target and pass/fail, to ``--doc``.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import pkgutil
import platform
import shlex
import sys
import time
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.fileio import atomic_write

REPO = Path(__file__).resolve().parents[2]
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

    import codectk

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
        "codectk": codectk.__version__,
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


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--suites", default=None, help="comma list of suites (default: all found)")
    p.add_argument("--quick", action="store_true", help="short smoke run (tests)")
    p.add_argument("--out", default="bench/results/latest.json", help="results JSON")
    p.add_argument("--doc", default="docs/benchmarks.md", help="markdown table ('' : none)")
    p.add_argument(
        "--threads", default=None, help="comma list of CPU thread counts (default: 1,<cores>)"
    )
    p.add_argument(
        "--package",
        default="codectk.benchmarks",
        help="package holding the suites (tests use their own)",
    )
    args = p.parse_args(argv)
    from codectk.benchmarks._measure import MeasurementError, in_subprocess

    t0 = time.perf_counter()
    found = discover(args.package)
    suites = found if args.suites is None else [s for s in args.suites.split(",") if s]
    unknown = sorted(set(suites) - set(found))
    if unknown:
        p.error(f"unknown suite(s) {unknown}; found: {found}")
    cores = os.cpu_count() or 1
    threads = (
        sorted({1, cores}) if args.threads is None else [int(t) for t in args.threads.split(",")]
    )
    info = machine()
    devices = [("cpu", threads)] + ([("cuda", [cores])] if info["cuda"] else [])
    rows = []
    for suite in suites:
        for device, th in devices:
            print(f"bench: {suite} on {device} (threads {th})", flush=True)
            try:
                out = in_subprocess(
                    "codectk.bin.bench:run_suite",
                    dict(
                        package=args.package,
                        suite=suite,
                        threads=th,
                        device=device,
                        quick=args.quick,
                    ),
                    timeout=3 * 3600,
                )
                new = out["rows"]
            except MeasurementError as exc:
                new = [error_row(suite, device, str(exc))]
            for r in new:
                print("  " + json.dumps(r), flush=True)
            rows += new
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python -m codectk.bin.bench "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": info,
        "suites": suites,
        "suite_docs": {s: _suite_doc(args.package, s) for s in suites},
        "rows": rows,
    }
    with atomic_write(args.out) as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    if args.doc:
        with atomic_write(args.doc) as f:
            f.write(render_markdown(report))
        print(f"wrote {args.doc}")
    failed = [r for r in rows if verdict(r) == "error"]
    if failed:
        print(f"bench: {len(failed)} suite(s) failed: see the error rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
