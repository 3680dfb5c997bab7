"""Tests of codectk.nn.conv: padding math, causality, weight-norm folding, streaming
(chunks equal the whole signal, fixed-shape state), AudioDec's presets and old names."""

import math

import pytest
import torch
from torch.nn.utils import parametrize

from codectk.nn.conv import (
    CausalConv1d,
    CausalConvTranspose1d,
    Conv1x1,
    PackedWeights,
    SConv1d,
    SConvTranspose1d,
    conv1d_time_major,
    onednn_packs,
    pad1d,
    remove_weight_norm_,
)


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


# --------------------------------------------------------------------------- streaming
def _stream(layer, x, cuts, final=False):
    """Run ``layer.forward_chunk`` over x[..., a:b] for consecutive cuts; return the
    concatenated output and every state seen."""
    state, parts, states = layer.init_state(x.shape[0]), [], []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        y, state = layer.forward_chunk(x[..., a:b], state, final and i == len(cuts) - 2)
        parts.append(y)
        states.append(state)
    return torch.cat(parts, -1), states


def _tensor_shapes(state):
    return [tuple(t.shape) for t in (state if isinstance(state, tuple) else (state,))
            if isinstance(t, torch.Tensor)]  # fmt: skip


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding", "mode"),
    [
        (7, 1, 1, "k-s", "constant"),
        (3, 1, 9, "k-s", "constant"),
        (8, 4, 1, "k-s", "constant"),
        (7, 1, 1, "k-s", "reflect"),  # EnCodec: waits for its first P + 1 = 7 samples
        (16, 8, 1, "k-s", "reflect"),
        (4, 2, 1, "k-s", "replicate"),
        (7, 1, 3, "k-1", "constant"),  # AudioDec
        (10, 5, 1, "k-1", "constant"),
        (2, 4, 1, "k-1", "constant"),  # AudioDec allows a stride above the kernel
    ],
)
def test_causal_conv_chunks_equal_forward(kernel, stride, dilation, padding, mode, grad):
    torch.manual_seed(0)
    conv = SConv1d(3, 5, kernel, stride, dilation, causal=True, causal_pad_mode=mode,
                   causal_padding=padding)  # fmt: skip
    x = torch.randn(2, 3, 40 * stride)
    cuts = [0, 0, stride, 2 * stride, 9 * stride, 9 * stride, 25 * stride, 40 * stride]
    with torch.set_grad_enabled(grad):
        whole = conv(x)
        y, states = _stream(conv, x, cuts)
        # forward is one chunk from the initial state
        y1, _ = conv.forward_chunk(x, conv.init_state(2), final=True)
    assert whole.shape == (2, 5, 40)
    torch.testing.assert_close(y, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y1, whole, rtol=1e-5, atol=1e-6)
    init = _tensor_shapes(conv.init_state(2))
    assert all(_tensor_shapes(s) == init for s in states)  # fixed-shape state
    assert init == [(2, 3, conv.left_padding)]
    assert conv.left_padding == (kernel - 1) * dilation + 1 - (1 if padding == "k-1" else stride)
    if mode == "reflect":  # nothing comes out before the first P + 1 samples
        first, _ = conv.forward_chunk(x[..., :stride], conv.init_state(2))
        assert first.shape[-1] == (0 if stride <= conv.left_padding else 1)


def test_reflect_conv_shorter_than_its_start_flushes_with_final():
    torch.manual_seed(0)
    conv = SConv1d(2, 3, 7, causal=True, causal_pad_mode="reflect")  # P = 6
    x = torch.randn(1, 2, 4)  # shorter than P + 1: forward zero-extends before reflecting
    y, _ = _stream(conv, x, [0, 2, 4], final=True)
    torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-6)
    held, state = conv.forward_chunk(x, conv.init_state(1))  # not final: held back
    assert held.shape == (1, 3, 0) and state[1] == 4 and not conv.started(state)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("mode", ["constant", "replicate"])
@pytest.mark.parametrize(("kernel", "stride"), [(4, 2), (10, 5), (3, 1), (5, 2), (4, 4)])
def test_causal_transposed_conv_chunks_equal_forward(kernel, stride, mode, grad):
    torch.manual_seed(0)
    up = SConvTranspose1d(3, 2, kernel, stride, causal=True, causal_pad_mode=mode)
    x = torch.randn(2, 3, 13)
    with torch.set_grad_enabled(grad):
        whole = up(x)
        y, states = _stream(up, x, [0, 1, 1, 2, 7, 13])
        y1, _ = up.forward_chunk(x, up.init_state(2))
    assert whole.shape == (2, 2, 13 * stride)
    torch.testing.assert_close(y, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y1, whole, rtol=1e-5, atol=1e-6)
    n_pad = -(-kernel // stride) - 1
    assert all(_tensor_shapes(s) == [(2, 3, n_pad)] for s in states)
    if mode == "constant":  # EnCodec's right trim of the plain transposed conv
        ref = up.convtr(x)[..., : 13 * stride]
    else:  # AudioDec: the first frame repeated n_pad times, then n_pad * s samples dropped
        xr = torch.cat([x[..., :1]] * n_pad + [x], -1)
        ref = up.convtr(xr)[..., n_pad * stride : (n_pad + 13) * stride]
    torch.testing.assert_close(whole, ref, rtol=1e-5, atol=1e-6)


def test_streaming_errors():
    x = torch.randn(1, 2, 8)
    with pytest.raises(ValueError, match="non-causal convolution cannot stream"):
        conv = SConv1d(2, 2, 3)
        conv.forward_chunk(x, conv.init_state(1))
    conv = SConv1d(2, 2, 4, 2, causal=True)
    with pytest.raises(ValueError, match="chunk of 3 samples is not a multiple of the stride 2"):
        conv.forward_chunk(x[..., :3], conv.init_state(1))
    with pytest.raises(ValueError, match="group norm"):
        g = SConv1d(2, 2, 3, causal=True, group_norm=True, weight_norm=False)
        g.forward_chunk(x, g.init_state(1))
    with pytest.raises(ValueError, match="trim_right_ratio 1 can stream"):
        up = SConvTranspose1d(2, 2, 4, 2, causal=True, trim_right_ratio=0.5)
        up.forward_chunk(x, up.init_state(1))
    with pytest.raises(ValueError, match=r"causal_padding 'k-2' not supported; choose one of"):
        SConv1d(1, 1, 3, causal=True, causal_padding="k-2")
    with pytest.raises(ValueError, match="needs causal=True"):
        SConv1d(1, 1, 3, causal_padding="k-1")
    with pytest.raises(ValueError, match="'replicate' needs causal=True"):
        SConvTranspose1d(1, 1, 4, 2, causal_pad_mode="replicate")
    with pytest.raises(ValueError, match="causal_pad_mode 'reflect' not supported"):
        SConvTranspose1d(1, 1, 4, 2, causal=True, causal_pad_mode="reflect")
    with pytest.raises(ValueError, match="2 \\* stride"):
        CausalConvTranspose1d(4, 3, 7, 4)


def test_audiodec_presets_keep_their_parameter_names_and_padding():
    conv = CausalConv1d(3, 4, 7, dilation=2, weight_norm=True)
    assert isinstance(conv, SConv1d) and conv.left_padding == 12
    assert {n for n, _ in conv.named_parameters()} == {
        "conv.bias", "conv.parametrizations.weight.original0",
        "conv.parametrizations.weight.original1",
    }  # fmt: skip
    up = CausalConvTranspose1d(4, 3, 8, 4)
    assert {n for n, _ in up.named_parameters()} == {"convtr.weight", "convtr.bias"}


def test_transposed_conv_loads_weights_saved_as_deconv():
    """AudioDec's transposed convs were ``deconv`` before version 2 of the class."""
    torch.manual_seed(0)
    up = CausalConvTranspose1d(4, 3, 8, 4, weight_norm=True)
    new = up.state_dict()
    old = {k.replace("convtr.", "deconv."): v.clone() + 1.0 for k, v in new.items()}
    fresh = CausalConvTranspose1d(4, 3, 8, 4, weight_norm=True)
    fresh.load_state_dict(old)  # no metadata: the old names are mapped
    for k, v in old.items():
        torch.testing.assert_close(fresh.state_dict()[k.replace("deconv.", "convtr.")], v)
    meta = dict(up.state_dict()._metadata)
    assert meta[""]["version"] == 2  # saved from now on with the version that has ``convtr``
    with pytest.raises(RuntimeError, match="Unexpected key"):  # a version-2 file is not renamed
        old_v2 = type(new)(old)
        old_v2._metadata = meta
        fresh.load_state_dict(old_v2)


def test_conv1x1_and_packed_weights_equal_plain_convolutions():
    torch.manual_seed(0)
    conv = Conv1x1(8, 6)
    ref = torch.nn.Conv1d(8, 6, 1)
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 30)
    big = SConv1d(8, 6, 5, dilation=2, weight_norm=False)  # weights made outside inference
    w, packs = big.conv.weight, PackedWeights()
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), ref(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(conv(x[:1]), ref(x[:1]), rtol=1e-5, atol=1e-6)
        assert conv(x[..., :0]).shape == (2, 6, 0)
        if onednn_packs(x, big.conv):  # CPU oneDNN: one reorder, then reused
            packed = packs.conv(w, x, 1, 2, 1)
            assert packs.conv(w, x, 1, 2, 1) is packed
            y = conv1d_time_major(x, None, big.conv.bias, 1, 0, 2, 1, packed)
            torch.testing.assert_close(y, big.conv(x), rtol=1e-5, atol=1e-6)
        m = packs.matrix(conv.weight)
        assert m.shape == (8, 6) and packs.matrix(conv.weight) is m  # made once
    with torch.no_grad():
        conv.weight.add_(1.0)  # a new version of the weight: made again
        ref.weight.add_(1.0)
    m2 = packs.matrix(conv.weight)
    assert m2 is not m
    torch.testing.assert_close(m2, conv.weight[:, :, 0].t())
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), ref(x), rtol=1e-5, atol=1e-6)  # not stale
    torch.testing.assert_close(conv(x), ref(x))  # training path
