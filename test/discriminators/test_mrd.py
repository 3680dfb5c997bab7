"""Tests of DAC's discriminators: ``mrd`` (multi-band multi-resolution STFT) and ``dac``."""

import math

import pytest
import torch

from codectk.discriminators import DISCRIMINATORS
from codectk.discriminators.mrd import match_stride_stft
from test.single_thread import one_torch_thread  # noqa: F401


def _n(module):
    return sum(p.numel() for p in module.parameters())


def test_match_stride_stft_frames_and_values():
    n_fft, hop = 64, 16
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(2, 1, 1000, generator=g)
    window = torch.hann_window(n_fft)
    spec = match_stride_stft(wav, window, hop)
    assert spec.shape == (2, 2, math.ceil(1000 / hop), n_fft // 2 + 1)
    # frame j is the windowed FFT of samples [j * hop - (n_fft - hop) / 2, ... + n_fft)
    pad = (n_fft - hop) // 2
    for j in (3, 20, 50):
        seg = wav[:, 0, j * hop - pad : j * hop - pad + n_fft] * window
        ref = torch.fft.rfft(seg)
        torch.testing.assert_close(spec[:, 0, j], ref.real, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(spec[:, 1, j], ref.imag, rtol=1e-4, atol=1e-4)


def test_mrd_outputs_bands_and_parameter_count():
    mrd = DISCRIMINATORS.build("mrd", {})
    # DAC's MRD: per window 5 bands x (2->32 (3x9), 3 x 32->32 (3x9), 32->32 (3x3)) plus a
    # shared 32->1 (3x3) post conv, weight norm everywhere: 3 x 471,330 parameters.
    assert _n(mrd) == 1_413_990
    assert mrd.discriminators[2].bands == [(0, 25), (25, 64), (64, 128), (128, 192), (192, 257)]
    small = DISCRIMINATORS.build("mrd", {"fft_sizes": [256, 128], "channels": 4})
    wav = torch.randn(2, 1, 1000, requires_grad=True)
    outs = small(wav)
    assert len(outs) == 2 and all(len(o) == 5 * 5 + 1 for o in outs)
    logits = outs[0][-1]
    assert logits.shape[:3] == (2, 1, math.ceil(1000 / 64))
    assert outs[0][0].shape == (2, 4, math.ceil(1000 / 64), 12)  # first band: int(0.1 * 129)
    sum(o[-1].mean() for o in outs).backward()
    assert wav.grad is not None and wav.grad.abs().sum() > 0


def test_mrd_rejects_bad_bands_and_hops():
    with pytest.raises(ValueError, match="empty or unordered bands"):
        DISCRIMINATORS.build("mrd", {"band_edges": [0.0, 0.5, 0.5, 1.0]})
    with pytest.raises(ValueError, match="must lie in"):
        DISCRIMINATORS.build("mrd", {"band_edges": [0.0, 0.5, 1.5]})
    with pytest.raises(ValueError, match="hop_factor 0.3 gives hops"):
        DISCRIMINATORS.build("mrd", {"fft_sizes": [512], "hop_factor": 0.3})


def test_dac_discriminator_structure_and_peak_normalisation():
    full = DISCRIMINATORS.build("dac", {})
    # MPD (HiFi-GAN V1 = DAC's, 41,105,770) + MRD (1,413,990), as the authors' Discriminator
    assert _n(full) == 42_519_760
    disc = DISCRIMINATORS.build(
        "dac",
        {
            "mpd": {"periods": [2, 3], "channels": [4, 8], "strides": [3, 1]},
            "mrd": {"fft_sizes": [128], "channels": 4},
        },
    )
    g = torch.Generator().manual_seed(1)
    wav = 0.3 * torch.randn(2, 1, 800, generator=g)
    outs = disc(wav)
    assert len(outs) == 3 and [len(o) for o in outs] == [3, 3, 26]
    # DC offset and level are removed before discriminating
    again = disc(3.0 * wav + 0.1)
    for a, b in zip(outs, again):
        torch.testing.assert_close(a[-1], b[-1], rtol=1e-4, atol=1e-5)
    plain = DISCRIMINATORS.build(
        "dac",
        {
            "mpd": {"periods": [2, 3], "channels": [4, 8], "strides": [3, 1]},
            "mrd": {"fft_sizes": [128], "channels": 4},
            "peak_normalize": False,
        },
    )
    plain.load_state_dict(disc.state_dict())
    assert not torch.allclose(plain(3.0 * wav)[0][-1], outs[0][-1])
