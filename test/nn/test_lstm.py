"""Tests of codectk.nn.lstm: the skip LSTM and its streaming state."""

import pytest
import torch

from codectk.nn.lstm import SLSTM


@pytest.mark.parametrize("skip", [True, False])
def test_lstm_chunks_equal_forward_from_the_zero_state(skip):
    torch.manual_seed(0)
    lstm = SLSTM(6, num_layers=2, skip=skip)
    x = torch.randn(3, 6, 20)
    whole = lstm(x)
    state, parts = lstm.init_state(3), []
    assert [tuple(t.shape) for t in state] == [(2, 3, 6), (2, 3, 6)]
    assert not any(t.any() for t in state)  # zeros, as forward starts
    for a, b in [(0, 0), (0, 1), (1, 7), (7, 20)]:
        y, state = lstm.forward_chunk(x[..., a:b], state)
        parts.append(y)
        assert [tuple(t.shape) for t in state] == [(2, 3, 6), (2, 3, 6)]
    torch.testing.assert_close(torch.cat(parts, -1), whole, rtol=1e-5, atol=1e-6)
    y1, _ = lstm.forward_chunk(x, lstm.init_state(3))
    torch.testing.assert_close(y1, whole)
    y2, _ = lstm.forward_chunk(x[..., 10:], lstm.init_state(3))
    assert not torch.allclose(y2, whole[..., 10:])  # the state matters
