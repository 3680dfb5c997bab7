"""FunCodec's objective (``loss: funcodec``); its values against FunCodec's own code are in
test/parity/test_freqcodec_parity.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codectk.losses import LOSSES, FunCodecLoss
from codectk.losses.adversarial import flat_feature_matching_loss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(2, 1, 4000, generator=g)
    return x, 0.8 * x + 0.01 * torch.randn(x.shape, generator=g)


def _outs(seed: int, n_maps=(2, 3)):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(2, 3, 4 + n, generator=g) for _ in range(n + 1)] for n in n_maps]


def test_mel_loss_is_zero_on_equal_input_and_grows_with_the_error(pair):
    x, y = pair
    loss = FunCodecLoss(16000, mel={"power_spec_loss": True})
    assert float(loss.mel_loss(x, x)) == 0.0
    assert 0 < float(loss.mel_loss(x, 0.9 * x + 0.1 * y)) < float(loss.mel_loss(x, y))
    without = FunCodecLoss(16000, mel={"power_spec_loss": False}).mel_loss(x, y)
    assert float(without) != pytest.approx(float(loss.mel_loss(x, y)))


def test_mel_scale_by_hand(pair):
    """One scale written out: reflect pad (n_fft - hop) / 2, 1024-point STFT of a 64-sample
    window, log10 of the mel power and of the power, L1 + MSE, halves of both."""
    from codectk.features import mel_filterbank

    x, y = pair
    loss = FunCodecLoss(16000, mel={"windows": [64], "power_spec_loss": True}).mel_loss

    def spectra(w):
        z = F.pad(w, (504, 504), mode="reflect")[:, 0]  # (1024 - 16) / 2
        win = torch.hann_window(64)
        p = torch.stft(z, 1024, 16, 64, win, center=False, return_complex=True).abs() ** 2
        m = mel_filterbank(16000, 1024, 64) @ p
        return m.clamp(min=1e-5).log10(), p.clamp(min=1e-5).log10()

    (mx, px), (my, py) = spectra(x), spectra(y)
    expect = 0.5 * (F.l1_loss(mx, my) + F.l1_loss(px, py)) + 0.5 * (
        F.mse_loss(mx, my) + F.mse_loss(px, py)
    )
    torch.testing.assert_close(loss(x, y), expect, rtol=1e-5, atol=0)


def test_generator_terms_weights_and_gen(pair):
    x, y = pair
    loss = LOSSES.build("funcodec", {"sample_rate": 16000})
    real, fake = _outs(1), _outs(2)
    commit = torch.tensor(0.5)
    total, parts = loss.generator(x, y, fake, real, commit, torch.zeros(()))
    assert set(parts) == {"time", "mel", "adv", "feat", "commit", "codebook", "gen", "total"}
    gen = parts["time"] + parts["mel"] + parts["adv"] / 9 + parts["feat"] * 100 / 9
    torch.testing.assert_close(parts["gen"], gen)
    torch.testing.assert_close(total, gen + commit)
    # feature matching: one flat mean over the 2 + 3 maps, not a mean of per-disc means
    maps = [F.l1_loss(r, f) for ro, fo in zip(real, fake) for r, f in zip(ro[:-1], fo[:-1])]
    torch.testing.assert_close(parts["feat"], torch.stack(maps).mean())
    assert float(flat_feature_matching_loss(real, real)) == 0.0
    d, d_parts = loss.discriminator(real, fake)
    expect = sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake))
    torch.testing.assert_close(d, expect / 2)


def test_errors(pair):
    x, _ = pair
    with pytest.raises(ValueError, match="weights must be >= 0"):
        FunCodecLoss(16000, weights={"adv": -1})
    with pytest.raises(ValueError, match=r"windows \[2048\] must lie in \[4, n_fft=1024\]"):
        FunCodecLoss(16000, mel={"windows": [2048]})
    with pytest.raises(ValueError, match="differ"):
        FunCodecLoss(16000).generator(x, x[..., :100])
    with pytest.raises(ValueError, match="no feature maps"):
        flat_feature_matching_loss([[torch.zeros(1)]], [[torch.zeros(1)]])
