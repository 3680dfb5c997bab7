"""Delay estimation and compensation (codectk.metrics.align) on real speech: known shifts,
and the anchors' own delays (Codec 2 about 20 ms, Opus a fraction of a sample)."""

from __future__ import annotations

import numpy as np
import pytest

from codectk.metrics.align import compensate, estimate_delay, shift
from codectk.metrics.distance import si_sdr
from codectk.metrics.quality import stoi
from test.metrics.conftest import bundled, needs_anchor_tools


@pytest.mark.parametrize("delay", [0.0, 0.3, -0.45, 7.0, -80.6, 331.25])
def test_known_delay_is_found_and_removed(delay: float):
    x, fs = bundled("1034-121119-0000")
    y = shift(x, delay)
    found, corr = estimate_delay(x, y, fs, max_delay_ms=25)
    assert found == pytest.approx(delay, abs=0.02) and corr > 0.8
    a, b = compensate(x, y, found)
    assert a.size == b.size == x.size - int(np.ceil(abs(found)))
    assert si_sdr(a, b) > 40  # the shifted copy lines up with the original again
    if abs(delay) >= 1:  # before compensation the same copy scores far lower
        assert si_sdr(x, y) < 10


def test_shift_keeps_the_waveform_and_edges():
    x, fs = bundled("1034-121119-0000")
    np.testing.assert_allclose(shift(x, 5.0)[5:], x[:-5], atol=1e-6)
    np.testing.assert_allclose(shift(x, -5.0)[:-5], x[5:], atol=1e-6)
    np.testing.assert_allclose(shift(shift(x, 0.37), -0.37)[50:-50], x[50:-50], atol=1e-3)


def test_search_range_bounds_the_delay():
    x, fs = bundled("1034-121119-0000")
    y = shift(x, 480.0)  # 30 ms
    assert estimate_delay(x, y, fs, max_delay_ms=40)[0] == pytest.approx(480.0, abs=0.02)
    assert abs(estimate_delay(x, y, fs, max_delay_ms=10)[0]) <= 160  # 10 ms at 16 kHz
    assert estimate_delay(x, y, fs, max_delay_ms=0) == (0.0, pytest.approx(np.nan, nan_ok=True))
    found, corr = estimate_delay(x, np.zeros_like(x), fs, 10)
    assert found == 0.0 and np.isnan(corr)
    with pytest.raises(ValueError, match="max_delay_ms >= 0"):
        estimate_delay(x, y, fs, -1)


@needs_anchor_tools
def test_anchor_delays_are_found_and_compensation_helps(anchor_decode):
    """Codec 2 1.2 kbps lags by 18-22 ms (its decoder); compensating it raises STOI. Opus
    24 kbps is off by under a sample; compensating it raises SI-SDR by several dB."""
    for utt in ("1034-121119-0000", "1040-133433-0000"):
        x, fs = bundled(utt)
        y = anchor_decode("codec2", 1.2, x, fs)
        delay, _ = estimate_delay(x, y, fs, max_delay_ms=50)
        assert 18 <= delay * 1000 / fs <= 23, delay
        a, b = compensate(x, y, delay)
        assert stoi(a, b, fs) > stoi(x, y, fs) + 0.05
        y = anchor_decode("opus", 24, x, fs)
        delay, corr = estimate_delay(x, y, fs, max_delay_ms=50)
        assert 0.1 < abs(delay) < 1.5 and corr > 0.9
        a, b = compensate(x, y, delay)
        assert si_sdr(a, b) > si_sdr(x, y) + 3
