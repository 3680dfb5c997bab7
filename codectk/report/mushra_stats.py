"""Scores of a MUSHRA test from the listeners' CSV files (ITU-R BS.1534-3 section 9).

Per system: the mean over every (listener, trial) rating and its 95% confidence
interval ``mean +- t_{0.975, n-1} * s / sqrt(n)`` (Student's t; BS.1534-3 eq. 2 and 3),
via :func:`codectk.metrics.summary.mean_ci95`.

Post-screening (BS.1534-3 section 4.1.2, optional): a listener who rates the hidden
reference below 90 in more than 15 % of their trials is excluded.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass

from codectk.errors import CodectkError
from codectk.metrics.summary import mean_ci95
from codectk.report.mushra import HIDDEN_REFERENCE

REQUIRED_COLUMNS = ("listener", "trial", "utt", "system", "score")


class MushraCsvError(CodectkError, ValueError):
    """A malformed answers file; the message names the file and line."""


@dataclass(frozen=True)
class Rating:
    """One slider: ``score`` in [0, 100] given by ``listener`` to ``system`` on ``utt``."""

    listener: str
    trial: int
    utt: str
    system: str
    score: float
    source: str


def read_ratings(paths: Iterable[str | os.PathLike]) -> list[Rating]:
    """Read the CSV files written by ``mushra.html``.

    Raises:
        MushraCsvError: a missing column, a bad number, a score outside [0, 100] or a
            repeated (listener, utt, system), naming ``file:line``.
    """
    ratings: list[Rating] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise MushraCsvError(
                    f"{path}:1: missing column(s) {missing}; a MUSHRA answers file has "
                    f"{list(REQUIRED_COLUMNS)}"
                )
            for row in reader:
                where = f"{path}:{reader.line_num}"
                try:
                    score, trial = float(row["score"]), int(row["trial"])
                except (TypeError, ValueError):
                    raise MushraCsvError(f"{where}: bad trial or score in {row}") from None
                if not 0 <= score <= 100:
                    raise MushraCsvError(f"{where}: score {score} outside [0, 100]")
                key = (row["listener"], row["utt"], row["system"])
                if key in seen:
                    raise MushraCsvError(
                        f"{where}: listener {key[0]!r} rated {key[2]!r} on {key[1]!r} again "
                        f"(first at {seen[key]})"
                    )
                seen[key] = where
                ratings.append(Rating(key[0], trial, key[1], key[2], score, where))
    return ratings


def screen_listeners(
    ratings: Iterable[Rating], threshold: float = 90.0, max_fraction: float = 0.15
) -> dict[str, float]:
    """Listeners failing post-screening: fraction of their trials in which the hidden
    reference got less than ``threshold``, for those above ``max_fraction``.

    Returns:
        dict: listener -> fraction of failed trials (only the excluded listeners).
    """
    trials: dict[str, list[bool]] = {}
    for r in ratings:
        if r.system == HIDDEN_REFERENCE:
            trials.setdefault(r.listener, []).append(r.score < threshold)
    fractions = {k: sum(v) / len(v) for k, v in trials.items()}
    return {k: f for k, f in fractions.items() if f > max_fraction}


def system_scores(ratings: Iterable[Rating]) -> dict[str, dict]:
    """Per system ``{"mean", "ci95", "n", "n_listeners"}``, best mean first."""
    by_system: dict[str, list[Rating]] = {}
    for r in ratings:
        by_system.setdefault(r.system, []).append(r)
    out = {}
    for system, rs in by_system.items():
        mean, ci = mean_ci95(r.score for r in rs)
        out[system] = {
            "mean": mean,
            "ci95": ci,
            "n": len(rs),
            "n_listeners": len({r.listener for r in rs}),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["mean"]))
