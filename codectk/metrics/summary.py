"""Summary statistics for per-utterance scores: mean and 95% confidence interval.

The interval is the Student-t interval for the mean of n independent scores,
``mean +- t_{0.975, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
(n - 1 in the denominator). NaN scores (utterances a metric could not score) are
left out of the statistics and counted separately.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy.stats import t as student_t


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student's t, n - 1 dof).

    Args:
        values: scores, one per utterance; NaNs are excluded.

    Returns:
        tuple: (mean, half_width), so the interval is ``mean +- half_width``. With one
        non-NaN value the half-width is NaN; with none both are NaN.
    """
    x = np.asarray(list(values), dtype=np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    return mean, float(student_t.ppf(0.975, n - 1)) * sem


def describe(values: Iterable[float]) -> dict:
    """Mean, 95% CI half-width and counts of a metric's per-utterance scores.

    Args:
        values: scores, one per utterance; NaNs are excluded and counted.

    Returns:
        dict: ``{"mean": float, "ci95": float, "n": int, "n_nan": int}`` where ``n``
        is the number of non-NaN scores and ``ci95`` the half-width (NaN for n < 2).
    """
    x = np.asarray(list(values), dtype=np.float64)
    n_nan = int(np.isnan(x).sum())
    mean, half = mean_ci95(x)
    return {"mean": mean, "ci95": half, "n": int(x.size - n_nan), "n_nan": n_nan}
