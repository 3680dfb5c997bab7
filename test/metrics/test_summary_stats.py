"""Mean and Student-t 95% confidence interval, against a hand computation."""

import math

import pytest

from codectk.metrics.summary import describe, mean_ci95

T_975_3DOF = 3.182446305284263  # t-table: 0.975 quantile, 3 degrees of freedom


def test_mean_ci95_by_hand():
    # values 1..4: mean 2.5, s^2 = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, sem = s / 2
    mean, half = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert half == pytest.approx(T_975_3DOF * math.sqrt(5 / 3) / 2, rel=1e-9)
    assert half == pytest.approx(2.05426, abs=1e-5)


def test_nans_are_excluded_and_counted():
    assert mean_ci95([1.0, float("nan"), 2.0, 3.0, 4.0]) == pytest.approx(
        mean_ci95([1.0, 2.0, 3.0, 4.0])
    )
    d = describe([4.0, float("nan"), 1.0, 3.0, 2.0, float("nan")])
    assert d["n"] == 4 and d["n_nan"] == 2
    assert d["mean"] == pytest.approx(2.5) and d["ci95"] == pytest.approx(2.05426, abs=1e-5)


def test_degenerate_sizes():
    mean, half = mean_ci95([3.0])
    assert mean == 3.0 and math.isnan(half)
    assert all(math.isnan(v) for v in mean_ci95([]))
    assert all(math.isnan(v) for v in mean_ci95([float("nan")]))
    d = describe([float("nan")])
    assert d["n"] == 0 and d["n_nan"] == 1 and math.isnan(d["mean"])
    mean, half = mean_ci95([2.0, 2.0, 2.0])
    assert mean == 2.0 and half == 0.0
