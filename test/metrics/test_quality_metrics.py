"""PESQ (wideband) and STOI/ESTOI wrappers against published and limiting values."""

import logging
import math
from pathlib import Path

import numpy as np
import pesq
import pytest
import soundfile as sf
import soxr

from codectk.metrics import quality
from codectk.metrics.quality import estoi, pesq_wb, stoi

DATA = Path(__file__).parents[1] / "data" / "pesq"
# python-pesq README ("Correctness") and tests/test_pesq.py: wideband score of the pair
PUBLISHED_PESQ_WB = 1.0832337141036987
PESQ_WB_MAX = 4.643888473510742  # P.862.2 mapping of the raw maximum 4.5


@pytest.fixture(scope="module")
def pair():
    ref, fs = sf.read(DATA / "speech.wav")
    deg, fs_deg = sf.read(DATA / "speech_bab_0dB.wav")
    assert fs == fs_deg == 16000 and ref.shape == deg.shape == (49600,)
    return ref, deg, fs


def _noisy(x, snr_db, seed=0):
    noise = np.random.default_rng(seed).standard_normal(x.size)
    return x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


def test_pesq_matches_published_value(pair):
    ref, deg, fs = pair
    assert pesq_wb(ref, deg, fs) == pytest.approx(PUBLISHED_PESQ_WB, abs=0.01)


def test_pesq_of_identical_signals_is_the_maximum(pair):
    ref, _, fs = pair
    assert pesq_wb(ref, ref, fs) == pytest.approx(PESQ_WB_MAX, abs=0.01)


def test_pesq_resamples_to_16k(pair):
    ref, deg, fs = pair
    ref48, deg48 = soxr.resample(ref, fs, 48000), soxr.resample(deg, fs, 48000)
    assert pesq_wb(ref48, deg48, 48000) == pytest.approx(PUBLISHED_PESQ_WB, abs=0.05)
    assert pesq_wb(ref48, ref48, 48000) == pytest.approx(PESQ_WB_MAX, abs=0.05)


def test_pesq_orders_noise_levels(pair):
    ref, _, fs = pair
    scores = [pesq_wb(ref, _noisy(ref, snr), fs) for snr in (0, 10, 30)]
    assert scores[0] < scores[1] < scores[2] < PESQ_WB_MAX


def test_pesq_too_short_or_silent_is_nan_with_warning(pair, caplog):
    ref, deg, fs = pair
    with caplog.at_level(logging.WARNING, logger="codectk.metrics.quality"):
        assert math.isnan(pesq_wb(ref[:3000], deg[:3000], fs))
        assert "at least 0.25 s" in caplog.text
        assert math.isnan(pesq_wb(np.zeros(16000), deg[:16000], fs))
        assert "all zeros" in caplog.text


def test_pesq_no_utterances_error_is_nan(pair, monkeypatch, caplog):
    ref, deg, fs = pair

    def _raise(*args, **kwargs):
        raise pesq.NoUtterancesError(b"No utterances detected")

    monkeypatch.setattr(quality._pesq, "pesq", _raise)
    with caplog.at_level(logging.WARNING, logger="codectk.metrics.quality"):
        assert math.isnan(pesq_wb(ref, deg, fs))
    assert "No utterances detected" in caplog.text


def test_pesq_rejects_bad_input(pair):
    ref, deg, fs = pair
    with pytest.raises(ValueError, match=r"1-D waveform \(T,\), got shape \(1, 49600\)"):
        pesq_wb(ref[None], deg, fs)
    with pytest.raises(ValueError, match="NaN or infinite"):
        pesq_wb(ref, np.full_like(deg, np.nan), fs)


def test_stoi_identity_and_noise(pair):
    ref, deg, fs = pair
    assert stoi(ref, ref, fs) == pytest.approx(1.0, abs=1e-6)
    assert estoi(ref, ref, fs) == pytest.approx(1.0, abs=1e-6)
    s_bab, s_10, s_30 = (stoi(ref, d, fs) for d in (deg, _noisy(ref, 10), _noisy(ref, 30)))
    assert 0.3 < s_bab < s_10 < s_30 < 1.0
    e_bab = stoi(ref, deg, fs, extended=True)
    assert e_bab == pytest.approx(estoi(ref, deg, fs), rel=1e-9)
    assert 0.0 < e_bab < s_bab  # ESTOI penalises babble more than STOI


def test_stoi_errors_and_short_input(pair, caplog):
    ref, deg, fs = pair
    with pytest.raises(ValueError, match="equal lengths"):
        stoi(ref, deg[:-1], fs)
    with caplog.at_level(logging.WARNING, logger="codectk.metrics.quality"):
        assert math.isnan(stoi(ref[:3000], deg[:3000], fs))
    assert "fewer than 30 frames" in caplog.text
