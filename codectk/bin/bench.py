"""``make bench``: run the benchmark suites, write the results and docs/benchmarks.md.

Usage::

    python -m codectk.bin.bench [--suites reference,data_stages] [--quick]
        [--out bench/results/latest.json] [--doc docs/benchmarks.md]

Every module of :mod:`codectk.benchmarks` (names starting with ``_`` are helpers) is a
suite; each runs in its own process, on the CPU with 1 thread and with all cores, and on
CUDA with all cores when a GPU is present (:mod:`codectk.benchmarks._runner`). A suite
that raises, or whose process dies, gives one ``error`` row with the message instead of
stopping the run. The rows go to ``--out`` (JSON: machine, command, rows) and, as one
table per suite with value, target and pass/fail, to ``--doc``.
"""

from __future__ import annotations

import os
import shlex
import sys

from codectk.benchmarks._runner import discover, run_benchmarks, verdict, write_report
from codectk.bin.common import parser, run


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
    found = discover(args.package)
    suites = found if args.suites is None else [s for s in args.suites.split(",") if s]
    unknown = sorted(set(suites) - set(found))
    if unknown:
        p.error(f"unknown suite(s) {unknown}; found: {found}")
    cores = os.cpu_count() or 1
    threads = (
        sorted({1, cores}) if args.threads is None else [int(t) for t in args.threads.split(",")]
    )
    command = "python -m codectk.bin.bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = run_benchmarks(suites, threads, args.quick, command, package=args.package)
    write_report(report, args.out, args.doc)
    failed = [r for r in report["rows"] if verdict(r) == "error"]
    if failed:
        print(f"bench: {len(failed)} suite(s) failed: see the error rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
