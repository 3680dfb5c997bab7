import math

import numpy as np
import pytest
import torch

from codectk.features import MelSpectrogram, hz_to_mel, mel_filterbank, mel_to_hz


def _reference_filterbank(sr, n_fft, n_mels, fmin, fmax, htk):
    """Loop-based re-derivation of the triangular filters, for comparison."""

    def h2m(f):
        if htk:
            return 2595.0 * math.log10(1 + f / 700.0)
        return f / (200.0 / 3) if f < 1000 else 15.0 + math.log(f / 1000.0) / (math.log(6.4) / 27)

    def m2h(m):
        if htk:
            return 700.0 * (10 ** (m / 2595.0) - 1)
        return m * (200.0 / 3) if m < 15 else 1000.0 * math.exp((math.log(6.4) / 27) * (m - 15))

    lo, hi = h2m(fmin), h2m(fmax)
    edges = [m2h(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    freqs = [sr / 2 * k / (n_fft // 2) for k in range(n_fft // 2 + 1)]
    w = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        a, b, c = edges[m : m + 3]
        for k, f in enumerate(freqs):
            if a < f <= b:
                w[m, k] = (f - a) / (b - a)
            elif b < f < c:
                w[m, k] = (c - f) / (c - b)
        w[m] *= 2.0 / (c - a)
    return w


@pytest.mark.parametrize("htk", [False, True])
def test_filterbank_matches_reference(htk):
    fb = mel_filterbank(16000, 512, 40, 0.0, 8000.0, htk=htk).numpy()
    ref = _reference_filterbank(16000, 512, 40, 0.0, 8000.0, htk)
    assert fb.shape == (40, 257)
    np.testing.assert_allclose(fb, ref, atol=1e-6)


def test_mel_scale_known_values():
    assert float(hz_to_mel(torch.tensor(1000.0))) == pytest.approx(15.0)
    assert float(hz_to_mel(torch.tensor(1000.0), htk=True)) == pytest.approx(1000.0, abs=0.1)
    f = torch.tensor([0.0, 440.0, 1000.0, 3000.0, 8000.0])
    torch.testing.assert_close(mel_to_hz(hz_to_mel(f)), f.double(), atol=1e-6, rtol=0)


def test_slaney_norm_gives_unit_area():
    sr, n_fft = 16000, 4096
    fb = mel_filterbank(sr, n_fft, 20).numpy()
    bin_hz = sr / n_fft
    np.testing.assert_allclose(fb.sum(axis=1) * bin_hz, 1.0, rtol=0.02)


def test_bad_band_edges():
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(16000, 512, 40, f_max=9000.0)
    with pytest.raises(ValueError, match="norm"):
        mel_filterbank(16000, 512, 40, norm="area")


def test_mel_spectrogram_sine_peaks_in_right_band():
    sr = 16000
    t = torch.arange(sr) / sr
    wav = torch.sin(2 * math.pi * 1000 * t)[None, None, :]  # (1, 1, T)
    mel = MelSpectrogram(sr, n_fft=1024, hop_length=256, n_mels=64)(wav)
    assert mel.shape == (1, 64, sr // 256 + 1)
    band = int(mel[0].mean(dim=1).argmax())
    edges = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(8000.0))), 66))
    assert edges[band] < 1000 < edges[band + 2]
