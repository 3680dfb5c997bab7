"""Tests of codectk.nn.seanet: shapes, causality, residual-unit dilations."""

import math

import pytest
import torch

from codectk.nn.conv import SConv1d
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder, make_activation


def _conf(**overrides):
    conf = dict(
        channels=1,
        dimension=16,
        n_filters=4,
        ratios=[4, 3, 2],
        n_residual_layers=2,
        dilation_base=3,
        residual_kernel_size=5,
        lstm=0,
    )
    conf.update(overrides)
    return conf


@pytest.mark.parametrize(("causal", "lstm"), [(True, 0), (False, 1)])
def test_shapes_for_any_length(causal, lstm):
    torch.manual_seed(0)
    enc = SEANetEncoder(**_conf(causal=causal, lstm=lstm))
    dec = SEANetDecoder(**_conf(causal=causal, lstm=lstm))
    assert enc.hop_length == dec.hop_length == 24
    for length in (1, 23, 24, 25, 1001):
        z = enc(torch.randn(2, 1, length))
        frames = math.ceil(length / 24)
        assert z.shape == (2, 16, frames)
        assert dec(z).shape == (2, 1, frames * 24)


def _perturb_after(module, x, t0):
    x2 = x.clone()
    x2[..., t0:] += torch.randn_like(x2[..., t0:])
    return module(x), module(x2)


@pytest.mark.parametrize("lstm", [0, 2])
def test_causal_encoder_frames_ignore_future_samples(lstm):
    torch.manual_seed(0)
    enc = SEANetEncoder(**_conf(causal=True, lstm=lstm))
    t0 = 5 * 24 + 3  # frame f depends on samples <= (f + 1) * hop - 1
    y, y2 = _perturb_after(enc, torch.randn(1, 1, 400), t0)
    assert torch.equal(y[..., :5], y2[..., :5])
    assert not torch.allclose(y[..., 5], y2[..., 5])


def test_noncausal_encoder_frames_see_future_samples():
    torch.manual_seed(0)
    enc = SEANetEncoder(**_conf(causal=False))
    y, y2 = _perturb_after(enc, torch.randn(1, 1, 400), 5 * 24 + 3)
    assert not torch.allclose(y[..., :5], y2[..., :5])


def test_causal_decoder_samples_ignore_future_frames():
    torch.manual_seed(0)
    dec = SEANetDecoder(**_conf(causal=True))
    y, y2 = _perturb_after(dec, torch.randn(1, 16, 12), 7)
    assert torch.equal(y[..., : 7 * 24], y2[..., : 7 * 24])
    assert not torch.allclose(y[..., 7 * 24 :], y2[..., 7 * 24 :])


def test_residual_dilations_and_channel_doubling():
    enc = SEANetEncoder(**_conf(n_residual_layers=3))
    dilated = [
        m.conv for m in enc.modules() if isinstance(m, SConv1d) and m.conv.kernel_size == (5,)
    ]
    assert [c.dilation[0] for c in dilated] == [1, 3, 9] * 3
    strided = [m.conv for m in enc.modules() if isinstance(m, SConv1d) and m.stride > 1]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in strided] == [
        (4, 8, 2),
        (8, 16, 3),
        (16, 32, 4),
    ]


def test_unknown_activation_and_bad_ratios_raise():
    with pytest.raises(ValueError, match="activation 'swish' not supported; choose one of"):
        make_activation("swish")
    with pytest.raises(ValueError, match="ratios must be a non-empty list"):
        SEANetEncoder(ratios=[])
