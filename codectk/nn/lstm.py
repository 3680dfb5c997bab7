"""Unidirectional LSTM over conv-layout sequences, with a skip connection.

EnCodec (Défossez et al., "High Fidelity Neural Audio Compression", 2022, §3.1) places a
two-layer LSTM after the SEANet encoder's last block and before the decoder's first block
to model the sequence; being unidirectional it keeps the codec causal.
"""

from __future__ import annotations

from torch import Tensor, nn


class SLSTM(nn.Module):
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

    def forward(self, x: Tensor) -> Tensor:
        """Run the LSTM.

        Args:
            x (Tensor): (B, C, F).

        Returns:
            Tensor: (B, C, F).
        """
        x = x.permute(2, 0, 1)  # (B, C, F) -> (F, B, C)
        y, _ = self.lstm(x)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0)  # (F, B, C) -> (B, C, F)
