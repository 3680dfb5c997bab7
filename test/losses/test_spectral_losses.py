"""Multi-scale mel loss, multi-resolution STFT loss, log-mel and STFT distances."""

from __future__ import annotations

import math

import pytest
import torch

from codectk.features import MelSpectrogram
from codectk.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
)

SR = 16000
NOISE_LEVELS = [0.001, 0.01, 0.05, 0.2]


@pytest.fixture
def wav():
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(8000) / SR
    tone = 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(2, 8000, generator=gen)
    return tone.unsqueeze(1)  # (2, 1, 8000)


def noisy(wav, level, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return wav + level * torch.randn(wav.shape, generator=gen)


def metrics():
    mel = MultiScaleMelLoss(SR)
    dac = MultiScaleMelLoss(
        SR,
        windows=[32, 64, 128, 256, 512, 1024, 2048],
        n_mels=[5, 10, 20, 40, 80, 160, 320],
        mag_weight=0.0,
        log_weights=[1 / math.log(10)] * 7,
        log_distance="l1",
    )
    mrstft = MultiResolutionSTFTLoss()
    return {
        "mel": mel,
        "mel_dac": dac,
        "mrstft": mrstft,
    }


@pytest.mark.parametrize("name", sorted(metrics()))
def test_zero_for_identical_and_monotone_in_noise(name, wav):
    fn = metrics()[name]
    assert float(fn(wav, wav.clone())) == pytest.approx(0.0, abs=1e-6)
    values = [float(fn(wav, noisy(wav, level))) for level in NOISE_LEVELS]
    assert all(math.isfinite(v) for v in values)
    assert values == sorted(values) and values[0] < values[-1] / 10, values


def test_mel_loss_matches_the_equation_for_one_window(wav):
    est = noisy(wav, 0.05)
    loss = MultiScaleMelLoss(SR, windows=[256], n_mels=64)
    mel = MelSpectrogram(SR, 256, 64, n_mels=64, log=False)
    s, s_hat = mel(wav), mel(est)  # (B, 64, frames)
    log_diff = torch.log(s.clamp(min=1e-5)) - torch.log(s_hat.clamp(min=1e-5))
    per_frame_l2 = log_diff.pow(2).sum(dim=1).sqrt()  # (B, frames)
    expected = (s - s_hat).abs().mean() + math.sqrt(256 / 2) * per_frame_l2.mean()
    torch.testing.assert_close(loss(wav, est), expected)


def test_mel_loss_hop_lengths_set_the_frame_shift(wav):
    # AudioDec's mel loss: one 2048 window at the codec hop (300 at 48 kHz); here 256 / 100.
    est = noisy(wav, 0.05)
    loss = MultiScaleMelLoss(SR, windows=[256], n_mels=64, hop_lengths=[100])
    mel = MelSpectrogram(SR, 256, 100, n_mels=64, log=False)
    s, s_hat = mel(wav), mel(est)  # (B, 64, 8000 / 100 + 1)
    assert s.shape[-1] == 81
    log_diff = torch.log(s.clamp(min=1e-5)) - torch.log(s_hat.clamp(min=1e-5))
    expected = (s - s_hat).abs().mean() + math.sqrt(256 / 2) * log_diff.pow(2).sum(1).sqrt().mean()
    torch.testing.assert_close(loss(wav, est), expected)
    default = MultiScaleMelLoss(SR, windows=[256], n_mels=64)
    assert not torch.allclose(default(wav, est), expected)


def test_mel_loss_gradient_is_finite_at_zero_difference(wav):
    est = wav.clone().requires_grad_(True)
    MultiScaleMelLoss(SR, windows=[64, 128])(wav, est).backward()
    assert torch.isfinite(est.grad).all()


def test_mel_loss_rejects_bad_config_and_shapes(wav):
    with pytest.raises(ValueError, match="one value per window"):
        MultiScaleMelLoss(SR, windows=[64, 128], n_mels=[10])
    with pytest.raises(ValueError, match="one value per window"):
        MultiScaleMelLoss(SR, windows=[64, 128], hop_lengths=[16])
    with pytest.raises(ValueError, match="hop_lengths must be positive"):
        MultiScaleMelLoss(SR, windows=[64], hop_lengths=[0])
    with pytest.raises(ValueError, match="log_distance"):
        MultiScaleMelLoss(SR, log_distance="l3")
    with pytest.raises(ValueError, match="differ in length"):
        MultiScaleMelLoss(SR)(wav, wav[..., :-1])


def test_mrstft_terms_for_a_scaled_estimate(wav):
    sc, mag = MultiResolutionSTFTLoss().terms(wav, 2 * wav)
    assert float(sc) == pytest.approx(1.0, rel=1e-4)  # || 2X - X || / || X ||
    assert float(mag) == pytest.approx(math.log(2), rel=1e-3)


def test_mrstft_rejects_bad_resolution():
    with pytest.raises(ValueError, match="win_length <= n_fft"):
        MultiResolutionSTFTLoss([[512, 128, 1024]])
