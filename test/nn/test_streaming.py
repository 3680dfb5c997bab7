"""Tests of codectk.nn.streaming: the step that runs a module tree chunk by chunk, state
keys, and the check that refuses layers that cannot stream."""

import copy

import pytest
import torch
from torch import nn

from codectk.nn.conv import SConv1d
from codectk.nn.lstm import SLSTM
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder
from codectk.nn.streaming import (
    check_streamable,
    init_states,
    states_started,
    stream_step,
    streaming,
)


def _encoder(**kw) -> SEANetEncoder:
    conf = dict(dimension=8, n_filters=2, ratios=[4, 2], lstm=1, causal=True)
    return SEANetEncoder(**{**conf, **kw})


def test_stream_step_runs_a_network_chunk_by_chunk_without_touching_its_input_states():
    torch.manual_seed(0)
    enc = _encoder(causal_pad_mode="constant").eval()
    x = torch.randn(2, 1, 8 * 12)
    whole = enc(x)
    states = init_states(enc, 2)
    assert len(states) == len({m.stream_key for m in enc.modules() if hasattr(m, "init_state")})
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in states.items()}
    parts = []
    for a in range(0, x.shape[-1], 24):
        y, new = stream_step(enc, states, x[..., a : a + 24])
        if a == 0:  # the step returns new states and leaves the given ones alone
            for k, v in before.items():
                assert torch.equal(states[k], v) if isinstance(v, torch.Tensor) else True
            assert set(new) == set(states)
        states = new
        parts.append(y)
    assert not streaming()
    torch.testing.assert_close(torch.cat(parts, -1), whole, rtol=1e-5, atol=1e-6)


def test_state_keys_are_unique_after_a_copy_inside_the_tree():
    enc = _encoder()
    init_states(enc)
    net = nn.Sequential(enc, copy.deepcopy(enc))  # the copy carries the same keys
    states = init_states(net)
    n_layers = sum(isinstance(m, (SConv1d, SLSTM)) for m in net.modules())
    assert len(states) == n_layers


def test_reflect_layers_start_late_and_report_it():
    torch.manual_seed(0)
    dec = SEANetDecoder(dimension=8, n_filters=2, ratios=[2], lstm=0, causal=True,
                        causal_pad_mode="reflect").eval()  # fmt: skip
    z = torch.randn(1, 8, 10)
    states = init_states(dec)
    assert not states_started(dec, states)
    y, states = stream_step(dec, states, z[..., :3])  # the first conv needs 7 frames
    assert y.shape[-1] == 0 and not states_started(dec, states)
    y2, states = stream_step(dec, states, z[..., 3:])
    assert states_started(dec, states)
    torch.testing.assert_close(torch.cat([y, y2], -1), dec(z), rtol=1e-5, atol=1e-6)


def test_a_layer_without_state_in_the_step_is_an_error():
    enc = _encoder()
    with pytest.raises(RuntimeError, match="no state in this streaming step"):
        stream_step(enc, {}, torch.zeros(1, 1, 8))
    assert not streaming()  # the step is left even on errors


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (_encoder(causal=False), r"model\.0: a non-causal convolution cannot stream"),
        (nn.Sequential(nn.Conv1d(2, 2, 3)), r"0: Conv1d mixes frames"),
        (nn.Sequential(nn.GroupNorm(1, 2)), r"0: GroupNorm mixes frames"),
        (nn.Sequential(nn.LSTM(2, 2)), r"0: LSTM mixes frames"),
        (nn.Sequential(nn.Conv1d(2, 2, 1, padding=1)), r"padded 1x1 Conv1d"),
    ],
)
def test_check_streamable_names_the_layer(module, message):
    with pytest.raises(ValueError, match=message):
        check_streamable(module, "net")


def test_check_streamable_accepts_causal_networks():
    check_streamable(_encoder())  # SConv1d wraps a Conv1d, SLSTM an LSTM: their business
    check_streamable(nn.Sequential(nn.Conv1d(2, 2, 1), nn.ELU(), nn.Linear(2, 2)))
