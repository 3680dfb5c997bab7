"""Tests of codectk.nn.conv: padding math, causality, weight-norm folding."""

import math

import pytest
import torch
from torch.nn.utils import parametrize

from codectk.nn.conv import SConv1d, SConvTranspose1d, pad1d, remove_weight_norm_


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"), [(7, 1, 1), (4, 2, 1), (16, 8, 1), (7, 1, 9), (10, 5, 1)]
)
def test_conv_maps_t_to_ceil_t_over_stride(causal, kernel, stride, dilation):
    conv = SConv1d(2, 3, kernel, stride, dilation=dilation, causal=causal)
    for length in (1, 7, 319, 320, 321, 1001):
        y = conv(torch.randn(2, 2, length))
        assert y.shape == (2, 3, math.ceil(length / stride)), length


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("kernel", "stride"), [(4, 2), (16, 8), (10, 5), (3, 1)])
def test_transposed_conv_maps_f_to_f_times_stride(causal, kernel, stride):
    convtr = SConvTranspose1d(3, 2, kernel, stride, causal=causal)
    for frames in (1, 5, 13):
        assert convtr(torch.randn(2, 3, frames)).shape == (2, 2, frames * stride), frames


def _past_unchanged(module, x, t0, n_past):
    """Perturb x[..., t0:] and return (past unchanged, anything changed)."""
    y = module(x)
    x2 = x.clone()
    x2[..., t0:] += torch.randn_like(x2[..., t0:])
    y2 = module(x2)
    return torch.equal(y[..., :n_past], y2[..., :n_past]), not torch.equal(y, y2)


def test_causal_conv_ignores_the_future():
    torch.manual_seed(0)
    conv = SConv1d(2, 3, kernel_size=8, stride=4, causal=True)
    x = torch.randn(1, 2, 103)
    t0 = 41  # frame f sees samples <= 4 f + 3, so frames 0..9 end before t0
    past_same, changed = _past_unchanged(conv, x, t0, n_past=10)
    assert past_same and changed
    # frame 10 covers sample 43 >= t0: it must change (the test can fail)
    y, y2 = conv(x), conv(torch.cat([x[..., :t0], x[..., t0:] + 1.0], dim=-1))
    assert not torch.equal(y[..., 10], y2[..., 10])


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_causal_stride_one_conv_output_t_sees_inputs_up_to_t(pad_mode):
    torch.manual_seed(0)
    conv = SConv1d(1, 2, kernel_size=7, dilation=2, causal=True, pad_mode=pad_mode)
    for t0 in (1, 3, 30):
        past_same, changed = _past_unchanged(conv, torch.randn(1, 1, 40), t0, n_past=t0)
        assert past_same and changed, t0


def test_noncausal_conv_sees_the_future():
    torch.manual_seed(0)
    conv = SConv1d(2, 3, kernel_size=8, stride=4, causal=False)
    past_same, _ = _past_unchanged(conv, torch.randn(1, 2, 103), t0=41, n_past=10)
    assert not past_same


def test_causal_transposed_conv_ignores_future_frames():
    torch.manual_seed(0)
    convtr = SConvTranspose1d(3, 2, kernel_size=10, stride=5, causal=True)
    f0 = 6
    past_same, changed = _past_unchanged(convtr, torch.randn(1, 3, 12), f0, n_past=f0 * 5)
    assert past_same and changed


def test_remove_weight_norm_keeps_output():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        SConv1d(1, 4, 7, causal=True),
        torch.nn.ELU(),
        SConv1d(4, 8, 4, stride=2),
        SConvTranspose1d(8, 2, 4, stride=2),
    )
    x = torch.randn(2, 1, 50)
    with torch.no_grad():
        for p in net.parameters():  # move g away from ||v|| so folding is not trivial
            p.add_(0.1 * torch.randn_like(p))
        before = net(x)
        assert sum(parametrize.is_parametrized(m) for m in net.modules()) == 3
        assert remove_weight_norm_(net) is net
        after = net(x)
    assert not any(parametrize.is_parametrized(m) for m in net.modules())
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_pad1d_reflect_handles_input_shorter_than_pad():
    x = torch.arange(3.0).view(1, 1, 3)
    y = pad1d(x, (5, 4), mode="reflect")
    assert y.shape == (1, 1, 12)
    torch.testing.assert_close(y[..., 5:8], x)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="stride 4 exceeds"):
        SConv1d(1, 1, kernel_size=3, stride=4)
    with pytest.raises(ValueError, match="pad mode 'wrap' not supported"):
        SConv1d(1, 1, kernel_size=3, pad_mode="wrap")
    with pytest.raises(ValueError, match="kernel_size 2 must be >= stride 4"):
        SConvTranspose1d(1, 1, kernel_size=2, stride=4)
