"""AcademiCodec's HiFi-Codec objective (``loss: hificodec``); its values against
AcademiCodec's own code are in test/parity/test_hificodec_parity.py (opt-in)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codectk.features import mel_filterbank
from codectk.losses import LOSSES, HiFiCodecLoss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(2, 1, 4000, generator=g)
    return x, 0.8 * x + 0.01 * torch.randn(x.shape, generator=g)


def _outs(seed: int, n_maps=(2, 3)):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(2, 3, 4 + n, generator=g) for _ in range(n + 1)] for n in n_maps]


def test_mel_loss_by_hand(pair):
    """HiFi-GAN's log-mel: reflect pad (n_fft - hop) / 2, no centring, sqrt(power + 1e-9),
    Slaney mels, ln max(., 1e-5); 45 x L1 at the first resolution + L1 at the others."""
    x, y = pair
    loss = HiFiCodecLoss(16000).mel_loss

    def log_mel(w, n_fft, hop, win):
        z = F.pad(w, ((n_fft - hop) // 2,) * 2, mode="reflect")[:, 0]
        s = torch.stft(z, n_fft, hop, win, torch.hann_window(win), center=False,
                       return_complex=True)  # fmt: skip
        mag = (s.real**2 + s.imag**2 + 1e-9).sqrt()
        return (mel_filterbank(16000, n_fft, 80) @ mag).clamp(min=1e-5).log()

    expect = sum(
        w * F.l1_loss(log_mel(x, *r), log_mel(y, *r))
        for w, r in [(45, (1024, 200, 800)), (1, (512, 120, 512)), (1, (256, 60, 256))]
    )
    torch.testing.assert_close(loss(x, y), expect, rtol=1e-5, atol=0)
    assert float(loss(x, x)) == 0.0


def test_generator_and_discriminator_sums(pair):
    x, y = pair
    loss = LOSSES.build("hificodec", {"sample_rate": 16000})
    real, fake = _outs(1), _outs(2)
    cb, commit = torch.tensor(0.3), torch.tensor(0.2)
    total, parts = loss.generator(x, y, fake, real, commit, cb)
    adv = sum(((1 - f[-1]) ** 2).mean() for f in fake)
    feat = sum((r - f).abs().mean() for ro, fo in zip(real, fake) for r, f in zip(ro[:-1], fo[:-1]))
    torch.testing.assert_close(parts["adv"], adv)
    torch.testing.assert_close(parts["feat"], feat)
    torch.testing.assert_close(total, parts["mel"] + adv + 2 * feat + 10 * cb + 2.5 * commit)
    d, _ = loss.discriminator(real, fake)
    expect = sum(((1 - r[-1]) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(real, fake))
    torch.testing.assert_close(d, expect)


def test_errors(pair):
    x, _ = pair
    with pytest.raises(ValueError, match="weights must be >= 0"):
        HiFiCodecLoss(16000, weights={"feat": -2})
    with pytest.raises(ValueError, match=r"resolution \[256, 300, 256\] must be"):
        HiFiCodecLoss(16000, mel={"resolutions": [[256, 300, 256]], "weights": [1]})
    with pytest.raises(ValueError, match="one value per resolution"):
        HiFiCodecLoss(16000, mel={"weights": [1.0]})
    with pytest.raises(ValueError, match="must both be"):
        HiFiCodecLoss(16000).mel_loss(x, x[:, :, :100])
