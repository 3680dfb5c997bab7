"""Benchmark suites run by ``make bench`` (``python -m codectk.bin.bench``, through
:mod:`codectk.benchmarks._runner`).

Each module here is one suite and defines::

    def run(threads: list[int], device: str, quick: bool) -> list[dict]

returning result rows ``{"suite", "name", "metric", "value", "unit", "threads",
"device"}`` plus, where the issue sets one, ``"target"`` (a number in the same unit)
and ``"target_rule"`` (``"<="`` or ``">="``) and any extra context keys (model, config,
reference time). ``quick`` asks for a short smoke run (used by the tests); measurements
that need a fresh process for a clean memory peak start their own.
"""
