"""Causal 1-D convolutions with a streaming (chunk-by-chunk) mode and explicit state.

The layers follow AudioDec's causal convolutions (Wu et al., "AudioDec: An Open-source
Streaming High-fidelity Neural Audio Codec", ICASSP 2023, §2.1; the authors'
``layers/conv_layer.py``), so whole-utterance outputs equal the authors' ``forward``:

* :class:`CausalConv1d` (kernel k, dilation d, stride s) zero-pads P = (k - 1) d samples
  on the left. Output frame f sees the padded samples [f s, f s + P] i.e. the input
  samples [f s - P, f s]: nothing after sample f s. T samples give ceil(T / s) frames.
* :class:`CausalConvTranspose1d` (kernel k = 2 s, stride s) repeats the first input frame
  once on the left (replicate padding), upsamples the F + 1 frames to (F + 2) s samples
  and drops s samples on each side, leaving F s samples. Output sample n mixes frames
  floor(n / s) - 1 and floor(n / s) only.

Streaming (``forward_chunk(x, state) -> y``): ``state`` is a list with one slot per
causal layer of a network (``state_index`` of each layer, assigned by
:func:`index_stream_layers`); a slot holds the layer's left context and is ``None``
before the first chunk. A causal conv keeps the input samples it has not consumed yet:
after the padded chunk of N samples it emits floor((N - P - 1) / s) + 1 frames and keeps
the last N - n_out s samples (P of them when the chunk length is a multiple of s). A
causal transposed conv keeps its last input frame (its overlap with the next chunk; on
the first chunk the first frame is repeated, as the whole-utterance padding does). So
the concatenated chunk outputs equal the whole-utterance output for any chunk lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

StreamState = list  # list[Tensor | None], one slot per causal layer


class CausalConv1d(nn.Module):
    """Left-padded Conv1d (AudioDec's ``CausalConv1d``) with a streaming mode.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): kernel k (samples).
        stride (int): stride s.
        dilation (int): dilation d.
        groups (int): convolution groups.
        bias (bool): additive bias.
        weight_norm (bool): weight normalisation (Salimans & Kingma, 2016).

    Raises:
        ValueError: for a kernel, stride or dilation below 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        weight_norm: bool = False,
    ):
        super().__init__()
        if min(kernel_size, stride, dilation) < 1:
            raise ValueError(
                f"kernel_size {kernel_size}, stride {stride}, dilation {dilation} must be >= 1"
            )
        conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.conv = _weight_norm(conv) if weight_norm else conv
        self.stride = stride
        self.context = (kernel_size - 1) * dilation  # P, left padding (samples)
        self.state_index = 0

    def forward(self, x: Tensor) -> Tensor:
        """Whole utterance: (B, C_in, T) -> (B, C_out, ceil(T / stride))."""
        return self.conv(F.pad(x, (self.context, 0)))

    def forward_chunk(self, x: Tensor, state: StreamState) -> Tensor:
        """One chunk: (B, C_in, L) -> (B, C_out, L') with the frames completed by it;
        updates ``state[self.state_index]`` (the unconsumed input samples)."""
        buf = state[self.state_index]
        if buf is None:
            buf = x.new_zeros(x.shape[0], x.shape[1], self.context)
        x = torch.cat((buf, x), dim=-1)  # (B, C_in, P' + L)
        n_out = (x.shape[-1] - self.context - 1) // self.stride + 1
        if n_out <= 0:
            state[self.state_index] = x
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        state[self.state_index] = x[..., n_out * self.stride :]
        return self.conv(x)


class CausalConvTranspose1d(nn.Module):
    """Causal ConvTranspose1d with kernel 2 * stride (AudioDec's ``CausalConvTranspose1d``).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): kernel, must be 2 * ``stride``.
        stride (int): upsampling factor s.
        bias (bool): additive bias.
        weight_norm (bool): weight normalisation.

    Raises:
        ValueError: if ``kernel_size != 2 * stride``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        bias: bool = True,
        weight_norm: bool = False,
    ):
        super().__init__()
        if kernel_size != 2 * stride:
            raise ValueError(f"kernel_size {kernel_size} must be 2 * stride ({2 * stride})")
        deconv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.deconv = _weight_norm(deconv) if weight_norm else deconv
        self.stride = stride
        self.state_index = 0

    def forward(self, x: Tensor) -> Tensor:
        """Whole utterance: (B, C_in, F) -> (B, C_out, F * stride)."""
        x = torch.cat((x[..., :1], x), dim=-1)  # replicate the first frame: (B, C_in, F + 1)
        return self.deconv(x)[..., self.stride : -self.stride]

    def forward_chunk(self, x: Tensor, state: StreamState) -> Tensor:
        """One chunk: (B, C_in, F) -> (B, C_out, F * stride); keeps the last frame."""
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.deconv.out_channels, 0)
        prev = state[self.state_index]
        if prev is None:
            prev = x[..., :1]
        state[self.state_index] = x[..., -1:]
        y = torch.cat((prev, x), dim=-1)  # (B, C_in, F + 1)
        return self.deconv(y)[..., self.stride : -self.stride]


STREAM_LAYERS = (CausalConv1d, CausalConvTranspose1d)


def index_stream_layers(module: nn.Module) -> int:
    """Number the causal layers under ``module`` (``state_index`` 0, 1, ...) in module
    order and return how many there are (the length of a fresh state list)."""
    n = 0
    for sub in module.modules():
        if isinstance(sub, STREAM_LAYERS):
            sub.state_index = n
            n += 1
    return n
