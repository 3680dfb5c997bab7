"""Tests of the ``dac`` loss: DAC's summed mel, LSGAN and feature-matching terms."""

import pytest
import torch

from codectk.features import MelSpectrogram
from codectk.losses import LOSSES
from test.single_thread import one_torch_thread  # noqa: F401


def _outs(g, shapes):
    return [[torch.randn(*s, generator=g) for s in sub] for sub in shapes]


def test_mel_term_is_the_sum_over_scales_of_log10_l1():
    loss = LOSSES.build("dac", {"sample_rate": 16000})
    g = torch.Generator().manual_seed(0)
    x, y = 0.1 * torch.randn(2, 1, 4000, generator=g), 0.1 * torch.randn(2, 1, 4000, generator=g)
    expected = 0.0
    for i, n_mels in zip(range(5, 12), (5, 10, 20, 40, 80, 160, 320)):
        mel = MelSpectrogram(16000, 2**i, 2**i // 4, n_mels=n_mels, log=True, eps=1e-5)
        expected += (mel(x) - mel(y)).abs().mean()
    total, parts = loss.generator(x, y)
    torch.testing.assert_close(parts["mel"], expected, rtol=1e-4, atol=1e-6)
    assert float(total) == pytest.approx(15.0 * float(expected), rel=1e-4)


def test_adversarial_and_feature_terms_are_summed_as_dac():
    loss = LOSSES.build("dac", {"sample_rate": 16000, "weights": {"mel": 0.0}})
    g = torch.Generator().manual_seed(1)
    shapes = [[(2, 3, 5), (2, 4, 3), (2, 1, 3)], [(2, 2, 7), (2, 1, 7)]]  # 2 sub-discs
    real, fake = _outs(g, shapes), _outs(g, shapes)
    commit, codebook = torch.tensor(0.4), torch.tensor(0.3)
    total, parts = loss.generator(
        torch.zeros(2, 1, 8), torch.zeros(2, 1, 8), fake, real, commit, codebook
    )
    adv = sum(((1 - f[-1]) ** 2).mean() for f in fake)
    feat = sum((r - f).abs().mean() for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1]))
    torch.testing.assert_close(parts["adv"], adv)
    torch.testing.assert_close(parts["feat"], feat)
    expected = adv + 2 * feat + 0.25 * 0.4 + 1.0 * 0.3
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    d_total, d_parts = loss.discriminator(real, fake)
    d_expected = sum((f[-1] ** 2).mean() + ((1 - r[-1]) ** 2).mean() for r, f in zip(real, fake))
    assert float(d_total) == pytest.approx(float(d_expected), rel=1e-6)


def test_dac_loss_config_errors():
    with pytest.raises(ValueError, match="weights must be >= 0"):
        LOSSES.build("dac", {"sample_rate": 16000, "weights": {"feat": -1.0}})
    with pytest.raises(ValueError, match="need one value per window"):
        LOSSES.build("dac", {"sample_rate": 16000, "mel": {"n_mels": [5, 10]}})
