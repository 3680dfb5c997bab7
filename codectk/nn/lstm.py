"""Unidirectional LSTM over conv-layout sequences, with a skip connection.

EnCodec (Défossez et al., "High Fidelity Neural Audio Compression", 2022, §3.1) places a
two-layer LSTM after the SEANet encoder's last block and before the decoder's first block
to model the sequence; being unidirectional it keeps the codec causal. Streaming
(:mod:`codectk.nn.streaming`): the state is the LSTM's hidden and cell state, zeros at the
start as in ``forward``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codectk.nn.streaming import StreamingModule, streaming


class SLSTM(StreamingModule):
    """LSTM applied along the frame axis of a (B, C, F) tensor, with a residual skip.

    Args:
        dimension (int): channels C (input and hidden size).
        num_layers (int): stacked LSTM layers.
        skip (bool): add the input to the LSTM output.
    """

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def _apply(self, fn, recurse: bool = True):
        # torch's RNNBase._apply resets its flat weights on a dtype/device change but does
        # not re-flatten them: cuDNN then warns and copies the weights on every call
        out = super()._apply(fn, recurse)
        self.lstm.flatten_parameters()
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Run the LSTM from the zero state (inside
        :func:`~codectk.nn.streaming.stream_step`: the next chunk).

        Args:
            x (Tensor): (B, C, F).

        Returns:
            Tensor: (B, C, F).
        """
        if streaming():
            return self.stream(x)
        return self._run(x, None)[0]

    def _run(self, x: Tensor, hc: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple]:
        x = x.permute(2, 0, 1)  # (B, C, F) -> (F, B, C)
        y, hc = self.lstm(x, hc)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0), hc  # (F, B, C) -> (B, C, F)

    def init_state(self, batch: int) -> tuple[Tensor, Tensor]:
        """Hidden and cell state, each (num_layers, B, C) zeros."""
        p = self.lstm.weight_ih_l0
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        return (
            torch.zeros(shape, dtype=p.dtype, device=p.device),
            torch.zeros(shape, dtype=p.dtype, device=p.device),
        )

    def forward_chunk(
        self, x: Tensor, state: tuple[Tensor, Tensor], final: bool = False
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the next chunk (B, C, F) from ``state`` (hidden, cell); ``final`` unused.

        Returns:
            tuple[Tensor, tuple[Tensor, Tensor]]: (B, C, F) and the state after it.
        """
        if x.shape[-1] == 0:
            return x, state
        return self._run(x, state)
