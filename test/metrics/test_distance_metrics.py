"""Log-mel distance, multi-resolution STFT distance and SI-SDR against closed forms."""

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.metrics.distance import log_mel_distance, si_sdr, stft_distance

DATA = Path(__file__).parents[1] / "data" / "pesq"


@pytest.fixture(scope="module")
def speech():
    wav, fs = sf.read(DATA / "speech.wav")
    return wav, fs


def _noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


def _add_noise(x, snr_db, seed=0):
    noise = _noise(x.size, seed)
    return x + noise * np.sqrt(np.sum(x**2) / np.sum(noise**2) / 10 ** (snr_db / 10))


def test_si_sdr_exact_for_orthogonal_noise(speech):
    ref, _ = speech
    s = ref - ref.mean()
    noise = _noise(ref.size)
    noise -= noise.mean()
    noise -= np.dot(noise, s) / np.dot(s, s) * s  # orthogonal to the zero-mean reference
    for snr in (-5.0, 0.0, 12.5, 30.0):
        deg = ref + noise * np.sqrt(np.sum(s**2) / np.sum(noise**2) / 10 ** (snr / 10))
        assert si_sdr(ref, deg) == pytest.approx(snr, abs=1e-6)


def test_si_sdr_random_noise_gives_snr(speech):
    ref, _ = speech
    for snr in (0.0, 10.0, 20.0):
        assert si_sdr(ref, _add_noise(ref - ref.mean(), snr) + ref.mean()) == pytest.approx(
            snr, abs=0.1
        )


def test_si_sdr_scale_and_offset_invariance(speech):
    ref, _ = speech
    deg = _add_noise(ref, 7.0)
    base = si_sdr(ref, deg)
    assert si_sdr(ref, 0.01 * deg) == pytest.approx(base, abs=1e-9)
    assert si_sdr(ref, -3.0 * deg) == pytest.approx(base, abs=1e-9)
    assert si_sdr(ref, deg + 0.2) == pytest.approx(base, abs=1e-9)
    assert si_sdr(ref, ref) > 100.0  # finite, very large
    with pytest.raises(ValueError, match="equal lengths"):
        si_sdr(ref, deg[:-5])


def test_log_mel_distance_zero_for_identical_and_grows_with_noise(speech):
    ref, fs = speech
    assert log_mel_distance(ref, ref, fs) == pytest.approx(0.0, abs=1e-7)
    d = [log_mel_distance(ref, _add_noise(ref, snr), fs) for snr in (30, 10, 0)]
    assert 0.0 < d[0] < d[1] < d[2]
    # trims to the shorter signal: trailing extra samples are ignored
    assert log_mel_distance(ref, np.concatenate([ref, np.ones(5000)]), fs) == pytest.approx(
        0.0, abs=1e-7
    )


def test_log_mel_distance_of_a_gain_is_its_log10():
    x = 0.1 * _noise(16000)  # mel magnitudes far above the 1e-5 floor
    assert log_mel_distance(x, 10.0 * x, 16000) == pytest.approx(1.0, abs=1e-4)
    assert log_mel_distance(x, 0.5 * x, 24000, n_fft=512, hop_length=128, n_mels=40) == (
        pytest.approx(math.log10(2.0), abs=1e-4)
    )


def test_stft_distance_closed_form_and_noise(speech):
    ref, _ = speech
    assert stft_distance(ref, ref) == pytest.approx(0.0, abs=1e-7)
    x = 0.1 * _noise(16000)
    # |S_deg| = 2 |S_ref|: spectral convergence 1, mean |ln 2|, at every resolution
    assert stft_distance(x, 2.0 * x) == pytest.approx(1.0 + math.log(2.0), abs=1e-4)
    assert stft_distance(x, 2.0 * x, resolutions=((256, 64, 200),)) == pytest.approx(
        1.0 + math.log(2.0), abs=1e-4
    )
    d = [stft_distance(ref, _add_noise(ref, snr)) for snr in (30, 10, 0)]
    assert 0.0 < d[0] < d[1] < d[2]


def test_distance_errors_and_short_input(caplog):
    x = _noise(1000)
    with pytest.raises(ValueError, match=r"win_length <= n_fft"):
        stft_distance(x, x, resolutions=((256, 64, 512),))
    with pytest.raises(ValueError, match="resolutions is empty"):
        stft_distance(x, x, resolutions=())
    with pytest.raises(ValueError, match="1-D waveform"):
        log_mel_distance(x[None], x, 16000)
    with caplog.at_level(logging.WARNING, logger="codectk.metrics.distance"):
        assert math.isnan(stft_distance(x, x))
        assert math.isnan(log_mel_distance(x, x, 16000))
    assert "n_fft=2048" in caplog.text and "n_fft=1024" in caplog.text
