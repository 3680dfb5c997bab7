"""Inference kernels of the 1-D convolutions (:mod:`codectk.nn.conv`): time-major oneDNN
convolutions, weights packed once for repeated shapes (streaming), 1x1 convolutions as
matrix products, and convolutions as one GEMM over gathered taps (the form compiled by
``torch.compile``). Each computes what ``F.conv1d`` computes, to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

_MKLDNN_DTYPES = (torch.float32, torch.bfloat16)


def weight_cache_key(w: Tensor) -> tuple | None:
    """Identity of a weight tensor for the inference layout caches: None (never cache) for
    inference tensors, which carry no version counter, and under ``torch.compile`` (the
    layout is then part of the graph, constant-folded by freezing)."""
    if torch.compiler.is_compiling() or w.is_inference():
        return None
    return (w.data_ptr(), w._version, w.device, w.dtype, tuple(w.shape))


def channels_last_weight(w: Tensor) -> Tensor:
    """(C_out, C_in / g, k) conv weight -> (C_out, C_in / g, 1, k) channels-last 2-D weight."""
    return w.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def cached_weight4(owner: nn.Module, conv: nn.Module) -> Tensor:
    """``channels_last_weight(conv.weight)``, cached on ``owner`` while the weight is unchanged
    (never for a parametrised weight, recomputed per call)."""
    w = conv.weight
    key = None if parametrize.is_parametrized(conv) else weight_cache_key(w)
    cache = owner._weight4_cache
    if key is not None and cache is not None and cache[0] == key:
        return cache[1]
    w4 = channels_last_weight(w)
    if key is not None:
        owner._weight4_cache = (key, w4)
    return w4


def conv1d_time_major(
    x: Tensor,
    weight4: Tensor | None,
    bias: Tensor | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    packed: Tensor | None = None,
) -> Tensor:
    """``F.conv1d`` computed as a channels-last 2-D convolution (inference path).

    oneDNN runs convolutions on time-major (channels-last) memory without reordering its
    input and output, faster than on (B, C, T) memory on the CPU (most for 1x1 and
    small-channel layers; the inference rows of docs/benchmarks.md use it). The result is
    a (B, C_out, T') tensor whose memory is time-major (strides (T' C_out, 1, C_out));
    element-wise ops keep that layout, so a stack of these convolutions never reorders.

    Args:
        x (Tensor): (B, C_in, T), any memory layout.
        weight4 (Tensor | None): (C_out, C_in / groups, 1, k), channels-last
            (:func:`channels_last_weight`); None with ``packed`` on the oneDNN path.
        bias (Tensor | None): (C_out,).
        stride, padding, dilation, groups (int): as ``F.conv1d`` (padding on both sides).
        packed (Tensor | None): ``weight4`` already reordered for oneDNN
            (:class:`PackedWeights`): oneDNN then skips reordering the weight at every
            call, the bulk of the time of a short input through a large weight.

    Returns:
        Tensor: (B, C_out, (T + 2 padding - dilation (k - 1) - 1) // stride + 1).
    """
    x4 = x.unsqueeze(2)
    if not x4.is_contiguous(memory_format=torch.channels_last):
        x4 = x4.contiguous(memory_format=torch.channels_last)
    direct = x4.device.type == "cpu" and x4.dtype in _MKLDNN_DTYPES
    if direct and torch.backends.mkldnn.enabled and not torch.compiler.is_compiling():
        # oneDNN directly: PyTorch's dispatch sends unstrided 1x1 float32 convolutions of
        # small batches on one thread to a slower im2col kernel that needs (B, C, T) memory
        # (torch.compile does not trace this op: it gets F.conv2d and picks its own kernels)
        args = ([0, padding], [1, stride], [1, dilation], groups)
        if packed is None:
            y = torch.ops.aten.mkldnn_convolution(x4, weight4, bias, *args)
        else:
            y = torch.ops.mkldnn._convolution_pointwise(x4, packed, bias, *args, "none", [], "")
    else:
        y = F.conv2d(x4, weight4, bias, (1, stride), (0, padding), (1, dilation), groups)
    if y.shape[1] > 1 and not y.is_contiguous(memory_format=torch.channels_last):
        y = y.contiguous(memory_format=torch.channels_last)  # a 1-channel input gives (B, C, T)
    return y.squeeze(2)


def conv1d_gemm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
) -> Tensor:
    """``F.conv1d`` without padding written as one matrix product over gathered taps:
    the form in which streaming convolutions are traced under ``torch.compile``, where
    TorchInductor autotunes its own GEMM kernels for them (traced as convolutions, some
    small layers fell back to a slow im2col kernel, and bfloat16 ran slower).

    The k taps of output frame f are the input rows f s + j d (j < k) of the time-major
    input; ``cols`` (B, F, k C_in) holds them side by side and the convolution is
    ``cols @ W`` with ``W[j C_in + c, o] = weight[o, c, j]`` (grouped: one product per
    group).

    Args:
        x (Tensor): (B, C_in, T).
        weight (Tensor): (C_out, C_in / groups, k).
        bias (Tensor | None): (C_out,).
        stride, dilation, groups (int): as ``F.conv1d``.

    Returns:
        Tensor: (B, C_out, (T - d (k - 1) - 1) // stride + 1), time-major memory.
    """
    c_out, cin_g, k = weight.shape
    b, c_in, t = x.shape
    n = (t - dilation * (k - 1) - 1) // stride + 1
    xt = x.transpose(1, 2)  # (B, C_in, T) -> (B, T, C_in)
    span = (n - 1) * stride + 1
    taps = [xt[:, j * dilation : j * dilation + span : stride] for j in range(k)]
    cols = torch.cat(taps, -1) if k > 1 else taps[0]  # (B, F, k C_in)
    if groups == 1:
        w = weight.permute(2, 1, 0).reshape(k * cin_g, c_out)  # (k C_in, C_out)
        y = cols @ w
    else:  # (B, F, k, g, C_in/g) -> (g, B F, k C_in/g) @ (g, k C_in/g, C_out/g)
        cols = cols.reshape(b * n, k, groups, cin_g).permute(2, 0, 1, 3).reshape(groups, b * n, -1)
        w = weight.view(groups, c_out // groups, cin_g, k).permute(0, 3, 2, 1)
        y = torch.bmm(cols, w.reshape(groups, k * cin_g, c_out // groups))  # (g, B F, C_out/g)
        y = y.permute(1, 0, 2).reshape(b, n, c_out)
    if bias is not None:
        y = y + bias
    return y.transpose(1, 2)  # (B, F, C_out) -> (B, C_out, F)


class PackedWeights:
    """One layer's weight in the layouts of its inference kernels (oneDNN's blocked
    convolution layout per input shape, a (C_in, C_out) matrix for a 1x1 convolution),
    made once and kept while the weight tensor is the same object at the same version;
    at most ``size`` entries (streaming repeats a few input shapes; the oldest goes
    first). Only for weights that are not parametrised (those are recomputed per call)."""

    def __init__(self, size: int = 4):
        self.size = size
        self.entries: dict = {}

    def __deepcopy__(self, memo: dict) -> PackedWeights:
        return PackedWeights(self.size)  # a copy's weights are other tensors

    def __getstate__(self) -> dict:
        return {"size": self.size, "entries": {}}  # oneDNN layouts do not pickle

    def get(self, w: Tensor, key: tuple, make: Callable[[], Tensor]) -> Tensor:
        """The layout ``key`` of weight ``w``: ``make()`` the first time."""
        if w.is_inference():  # no version counter: never cached
            return make()
        entry = self.entries.get(key)
        if entry is None or entry[0] is not w or entry[1] != w._version:
            if entry is None and len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            entry = self.entries[key] = (w, w._version, make())  # holds w: no id reuse
        return entry[2]

    def conv(self, w: Tensor, x: Tensor, stride: int, dilation: int, groups: int) -> Tensor:
        """``w`` (C_out, C_in / g, k) reordered for oneDNN convolutions of inputs shaped
        as ``x`` (B, C_in, T) without padding (``conv1d_time_major(packed=...)``)."""
        shape = [x.shape[0], x.shape[1], 1, x.shape[2]]
        return self.get(
            w,
            ("conv", *shape, stride, dilation, groups, x.dtype),
            lambda: torch._C._nn.mkldnn_reorder_conv2d_weight(
                channels_last_weight(w).to_mkldnn(),
                [0, 0],
                [1, stride],
                [1, dilation],
                groups,
                shape,
            ),
        )

    def matrix(self, w: Tensor) -> Tensor:
        """A 1x1 convolution's weight (C_out, C_in, 1) as the (C_in, C_out) matrix."""
        return self.get(w, ("matrix",), lambda: w[:, :, 0].t().contiguous())


def onednn_packs(x: Tensor, module: nn.Module) -> bool:
    """Whether a convolution of ``module`` on ``x`` may use :class:`PackedWeights`: CPU
    oneDNN with its reorder op, float32 / bfloat16, no gradients, not under
    ``torch.compile``, a weight that is not parametrised."""
    return (
        x.device.type == "cpu"
        and x.dtype in _MKLDNN_DTYPES
        and torch.backends.mkldnn.enabled
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not parametrize.is_parametrized(module)
        and hasattr(torch._C._nn, "mkldnn_reorder_conv2d_weight")
    )


def pointwise_conv(x: Tensor, matrix: Tensor, bias: Tensor | None) -> Tensor:
    """A 1x1 convolution as a matrix product over time-major rows (no oneDNN set-up):
    x (B, C_in, T), matrix (C_in, C_out) -> (B, C_out, T), time-major memory."""
    xt = x.transpose(1, 2)  # (B, C_in, T) -> (B, T, C_in), contiguous when time-major
    if x.shape[0] == 1:
        y = (xt[0] @ matrix if bias is None else torch.addmm(bias, xt[0], matrix))[None]
    else:
        y = (
            xt @ matrix
            if bias is None
            else torch.baddbmm(bias, xt, matrix.expand(x.shape[0], -1, -1))
        )
    return y.transpose(1, 2)  # (B, T, C_out) -> (B, C_out, T)
