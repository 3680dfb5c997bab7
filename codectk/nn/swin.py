"""Swin-transformer layers on a (frequency, time) grid of patches, as ESC uses them.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
ICCV 2021: §3.2 window multi-head self-attention (W-MSA) on non-overlapping
``window_size`` x ``window_size`` windows and, in every second block, shifted windows
(SW-MSA: cyclic shift by ``window_size // 2`` with a mask of -100 between tokens from
different regions), eq. (3) the pre-norm block, eq. (4) the learned relative position
bias B added to QK^T / sqrt(d). Gu and Diao, "ESC: Efficient Speech Coding with
Cross-Scale Residual Vector Quantized Transformers", EMNLP 2024 (arXiv 2404.19441), §3.1
apply them to complex-spectrum patches and rescale only the frequency axis between
stages: :class:`PatchMerge` (pixel unshuffle by (2, 1), LayerNorm, linear) down and
:class:`PatchSplit` (LayerNorm, linear, pixel shuffle by (2, 1)) up.

Tensors are (B, H, W, C): H patches along frequency, W along time, C channels (the
authors' (B, H * W, C) token sequence with h-major order). As in the authors' code the
grid is zero-padded (after the first LayerNorm) to multiples of the window and the
shift is kept even when a side is not larger than the window.

Speed: every window of every example is one batch entry of a single
``torch.nn.functional.scaled_dot_product_attention`` call; the relative-position bias
and the shift mask are added into one (windows, heads, N, N) bias; the gather indices
and the mask are cached per grid size. Without autograd, on a CPU a block runs in
cache-sized chunks and its projections skip the padding
(:meth:`SwinBlock.forward_chunked`), and :class:`PatchDeEmbed` is one conv on any device
(:meth:`PatchDeEmbed.forward_composed`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import check_choice

_MASK_VALUE = -100.0  # Swin's value between tokens of different shifted regions


def relative_position_index(window_size: int) -> Tensor:
    """Index into the (2 ws - 1)^2 bias table for each query/key pair of a window.

    Returns:
        Tensor: LongTensor (ws^2, ws^2).
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # (2, ws^2)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (ws^2, ws^2, 2)
    rel = rel + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]  # (ws^2, ws^2)


def shift_mask(hp: int, wp: int, window_size: int, shift: int) -> Tensor:
    """SW-MSA mask of a padded (hp, wp) grid: 0 within a region, -100 across regions.

    Returns:
        Tensor: (n_windows, ws^2, ws^2), windows in row-major (h, w) order.
    """
    img = torch.zeros(hp, wp)
    cuts = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            img[hs, ws] = label
            label += 1
    win = img.view(hp // window_size, window_size, wp // window_size, window_size)
    win = win.permute(0, 2, 1, 3).reshape(-1, window_size * window_size)  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]  # (nW, N, N)
    return torch.zeros_like(diff).masked_fill(diff != 0, _MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative position bias (eq. 4).

    Args:
        dim (int): channels C.
        num_heads (int): heads; C must be divisible by it.
        window_size (int): window side ws (N = ws^2 tokens per window).

    Raises:
        ValueError: C not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.window_size = num_heads, window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> Tensor:
        """Relative position bias (heads, N, N)."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)  # (N, N, nH) -> (nH, N, N)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Attend within windows.

        Args:
            x (Tensor): (B, nW, N, C) tokens of nW windows per example.
            mask (Tensor | None): (nW, N, N) additive shift mask, or None.

        Returns:
            Tensor: (B, nW, N, C).
        """
        return self.proj(self.attend(self.qkv(x), mask))

    def attend(self, qkv: Tensor, mask: Tensor | None) -> Tensor:
        """Softmax attention of projected tokens, before the output projection.

        Args:
            qkv (Tensor): (B, nW, N, 3 C), the ``qkv`` projection of the window tokens.
            mask (Tensor | None): (nW, N, N) additive shift mask, or None.

        Returns:
            Tensor: (B, nW, N, C) in the dtype of ``qkv``.
        """
        b, nw, n, c3 = qkv.shape
        dtype, c = qkv.dtype, c3 // 3
        qkv = qkv.view(b * nw, n, 3, self.num_heads, c // self.num_heads)
        if qkv.dtype == torch.bfloat16 and qkv.device.type == "cpu":
            # CPU attention kernels are ~2x slower in bfloat16 than in float32 on 4 x 4
            # windows; the core has few multiply-accumulates, run it in float32
            qkv = qkv.float()
        # Strided views (B*nW, nH, N, d), no copies; SDPA's CPU kernel writes its output
        # as (B*nW, N, nH, d), so the transpose back below is free.
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
        bias = self.position_bias()[None].to(q.dtype)  # (1, nH, N, N)
        if mask is not None:
            bias = bias + mask[:, None].to(q.dtype)  # (nW, nH, N, N)
            if b > 1:
                bias = bias.repeat(b, 1, 1, 1)  # (B*nW, nH, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B*nW, nH, N, d)
        return out.transpose(1, 2).reshape(b, nw, n, c).to(dtype)


class SwinBlock(nn.Module):
    """One pre-norm Swin block (eq. 3): (S)W-MSA and a GELU MLP, each with a residual.

    Args:
        dim (int): channels C.
        num_heads (int): attention heads.
        window_size (int): window side ws.
        shift (int): cyclic shift (0: W-MSA, ws // 2: SW-MSA).
        mlp_ratio (float): MLP hidden width / C.
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float = 4.0
    ):
        super().__init__()
        if not 0 <= shift < window_size:
            raise ValueError(f"shift {shift} must lie in [0, window_size {window_size})")
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, grid: WindowGrid) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C); ``grid`` holds the window indices and the mask of
        this (H, W) (see :class:`WindowGrid`). Without autograd (inference) on a CPU the
        same computation runs in chunks of about :data:`CHUNK_VALUES` values
        (:meth:`forward_chunked`)."""
        if not torch.is_grad_enabled() and x.device.type == "cpu":
            return self.forward_chunked(x, grid)
        b, h, w, c = x.shape
        y = self.norm1(x)
        if grid.pad_h or grid.pad_w:
            y = F.pad(y, (0, 0, 0, grid.pad_w, 0, grid.pad_h))  # zeros after the norm, as Swin
        part, unpart = grid.indices(self.shift)
        # cyclic shift + window partition in one gather: (B, Hp*Wp, C) -> (B, nW, N, C)
        y = y.reshape(b, -1, c).index_select(1, part).view(b, -1, self.window_size**2, c)
        y = self.attn(y, grid.mask if self.shift else None)
        # window merge + reverse shift + crop in one gather: -> (B, H*W, C)
        y = y.view(b, -1, c).index_select(1, unpart).view(b, h, w, c)
        x = x + y
        return x + self.mlp(self.norm2(x))

    def forward_chunked(self, x: Tensor, grid: WindowGrid) -> Tensor:
        """:meth:`forward` for inference, equal to it up to float rounding: attention on
        groups of windows and the MLP on groups of tokens, so that no intermediate (the
        3 C wide qkv projection, the 4 C wide MLP hidden layer) holds much more than
        :data:`CHUNK_VALUES` values. On a CPU this keeps them in cache and avoids the
        page faults of fresh multi-megabyte buffers, which cost as much as the
        matrix products at ESC's sizes.

        The projections are token-wise, so they run on the tokens of the grid only: a
        zero padding token's q, k and v are the ``qkv`` bias, and its output is dropped.
        """
        b, h, w, c = x.shape
        n, attn = self.window_size**2, self.attn
        flat = x.reshape(b, h * w, c)  # (B, H*W, C)
        source = grid.sources(self.shift)  # (nW*N,) grid position of each token, -1: padding
        mask = grid.mask if self.shift else None
        out = flat.new_empty(b, h * w, c)  # attention output at each grid position
        step = max(1, CHUNK_VALUES // (3 * c * b * n))  # windows per chunk
        for j in range(0, source.numel() // n, step):
            idx = source[j * n : (j + step) * n]  # grid positions of these windows' tokens
            m = mask[j : j + step] if mask is not None else None
            if grid.pad_h or grid.pad_w:
                keep = (idx >= 0).nonzero()[:, 0]  # the chunk's tokens that are not padding
                qkv = attn.qkv.bias.expand(b, idx.numel(), 3 * c).clone()  # qkv(0) = bias
                idx = idx[keep]
                qkv.index_copy_(1, keep, attn.qkv(_norm(self.norm1, flat.index_select(1, idx))))
                o = attn.attend(qkv.view(b, -1, n, 3 * c), m).view(b, -1, c)
                o = o.index_select(1, keep)
            else:
                win = _norm(self.norm1, flat.index_select(1, idx))  # (B, nW' N, C)
                qkv = attn.qkv(win).view(b, -1, n, 3 * c)  # (B, nW', N, 3C)
                o = attn.attend(qkv, m).view(b, -1, c)
            out.index_copy_(1, idx, attn.proj(o))  # window merge + reverse shift
        res = x.new_empty(b, h, w, c)  # contiguous even where x is a permuted view
        tokens = torch.add(flat, out, out=res.view(b, h * w, c)).view(-1, c)  # (B*H*W, C)
        rows = max(16, CHUNK_VALUES // self.mlp[0].out_features)
        for r in range(0, tokens.shape[0], rows):
            part_x = tokens[r : r + rows]  # our own tensor: the MLP adds in place
            part_x += self.mlp(_norm(self.norm2, part_x))
        return res


def _norm(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    """``norm(x)``; a bfloat16 ``x`` on the CPU is normalised in float32 (faster there than
    the bfloat16 kernel at ESC's widths, and as accurate), the result cast back."""
    if x.dtype != torch.bfloat16 or x.device.type != "cpu":
        return norm(x)
    w, b = norm.weight.float(), norm.bias.float()
    return F.layer_norm(x.float(), norm.normalized_shape, w, b, norm.eps).to(x.dtype)


CHUNK_VALUES = 2**19
"""Size of the largest intermediate of one chunk of :meth:`SwinBlock.forward_chunked`
(the qkv projection of a group of windows, the MLP hidden layer of a group of tokens),
in values: 2 MiB in float32, about a core's L2 cache. On the development CPU (AMD EPYC
Zen 4, 1 thread) 2^18 to 2^20 run ESC-Base within a few percent of each other, 2^21 and
whole-grid blocks slower."""


class WindowGrid:
    """Gather indices and the SW-MSA mask of one (H, W) grid (shared by a stage's blocks).

    ``indices(shift)`` gives ``part`` (nW * N,): for each token in window order, its
    position in the zero-padded (Hp, Wp) grid after a cyclic shift by -shift (as
    ``torch.roll``), and ``unpart`` (H * W,): for each unpadded position, its token.
    """

    def __init__(self, h: int, w: int, window_size: int, shift: int, device: torch.device):
        ws = window_size
        self.hp, self.wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
        self.pad_h, self.pad_w = self.hp - h, self.wp - w
        self._indices: dict[int, tuple[Tensor, Tensor]] = {}
        self._sources: dict[int, Tensor] = {}
        rows = torch.arange(self.hp, device=device).view(-1, ws)  # (nH', ws)
        cols = torch.arange(self.wp, device=device).view(-1, ws)  # (nW', ws)
        for s in {0, shift}:
            r, c = (rows + s) % self.hp, (cols + s) % self.wp
            part = r[:, None, :, None] * self.wp + c[None, :, None, :]  # (nH', nW', ws, ws)
            part = part.reshape(-1)
            inv = torch.empty_like(part)
            inv[part] = torch.arange(part.numel(), device=device)
            unpart = inv.view(self.hp, self.wp)[:h, :w].reshape(-1)
            self._indices[s] = (part, unpart)
            pr, pc = part // self.wp, part % self.wp
            source = torch.where((pr < h) & (pc < w), pr * w + pc, -1)
            self._sources[s] = source
        self.mask = shift_mask(self.hp, self.wp, ws, shift).to(device) if shift else None

    def indices(self, shift: int) -> tuple[Tensor, Tensor]:
        """(part, unpart) LongTensors for a block with this shift."""
        return self._indices[shift]

    def sources(self, shift: int) -> Tensor:
        """LongTensor (nW * N,): for each token in window order (as ``part``), its
        position in the unpadded (H, W) grid, h-major, or -1 for a padding token."""
        return self._sources[shift]


class PatchMerge(nn.Module):
    """Halve the frequency axis: pixel unshuffle by (2, 1), LayerNorm(2 C_in), linear
    (no bias) to C_out. An odd H is zero-padded first (H' = ceil(H / 2))."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(2 * in_dim)
        self.down = nn.Linear(2 * in_dim, out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C_in) -> (B, ceil(H / 2), W, C_out)."""
        b, h, w, c = x.shape
        if h % 2:
            x = F.pad(x, (0, 0, 0, 0, 0, 1))
        x = x.view(b, -1, 2, w, c).transpose(2, 3).reshape(b, -1, w, 2 * c)  # (B, H/2, W, 2C)
        return self.down(self.norm(x))


class PatchSplit(nn.Module):
    """Double the frequency axis: LayerNorm(C_in), linear (no bias) to 2 C_out, pixel
    shuffle by (2, 1)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.up = nn.Linear(in_dim, 2 * out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C_in) -> (B, 2 H, W, C_out)."""
        b, h, w, _ = x.shape
        x = self.up(self.norm(x)).view(b, h, w, 2, -1)  # (B, H, W, 2, C_out)
        return x.transpose(2, 3).reshape(b, 2 * h, w, -1)  # (B, 2H, W, C_out)


class SwinStage(nn.Module):
    """``depth`` Swin blocks (W-MSA and SW-MSA alternating) at ``in_dim``, then an optional
    frequency rescaling to ``out_dim`` (the authors' ``TransformerLayer``).

    Args:
        in_dim (int): channels of the blocks.
        out_dim (int): channels after rescaling (must equal ``in_dim`` without one).
        num_heads (int): attention heads.
        depth (int): blocks.
        window_size (int): window side.
        mlp_ratio (float): MLP hidden width / channels.
        scale (str | None): "down" (:class:`PatchMerge`), "up" (:class:`PatchSplit`) or
            None.

    Raises:
        ValueError: an unknown ``scale``, or ``out_dim != in_dim`` without one.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_heads: int,
        depth: int = 2,
        window_size: int = 4,
        mlp_ratio: float = 4.0,
        scale: str | None = None,
    ):
        super().__init__()
        check_choice("scale", scale, ("down", "up", None))
        if scale is None and out_dim != in_dim:
            raise ValueError(f"out_dim {out_dim} != in_dim {in_dim} needs a scale")
        self.window_size, self.shift = window_size, window_size // 2
        self.blocks = nn.ModuleList(
            SwinBlock(in_dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift, mlp_ratio)
            for i in range(depth)
        )
        resample = {"down": PatchMerge, "up": PatchSplit}
        self.resample = resample[scale](in_dim, out_dim) if scale else None
        self._grids: dict[tuple[int, int, str], WindowGrid] = {}

    def grid(self, h: int, w: int, device: torch.device) -> WindowGrid:
        """The cached :class:`WindowGrid` of an (h, w) grid (a few sizes are kept)."""
        key = (h, w, str(device))
        if key not in self._grids:
            if len(self._grids) >= 8:
                self._grids.clear()
            # normal tensors even under inference_mode, so that a later training step
            # may use the cached grid
            with torch.inference_mode(False):
                self._grids[key] = WindowGrid(h, w, self.window_size, self.shift, device)
        return self._grids[key]

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C_in) -> (B, H', W, C_out), H' = H, ceil(H / 2) or 2 H."""
        grid = self.grid(x.shape[1], x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, grid)
        return self.resample(x) if self.resample is not None else x


class PatchEmbed(nn.Module):
    """Non-overlapping (p_f, p_t) patches of a (B, C_in, F, T) feature map to channels
    C with a strided conv, then LayerNorm."""

    def __init__(self, in_channels: int, patch_size: tuple[int, int], dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, F, T) -> (B, F / p_f, T / p_t, C)."""
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # (B, C, H, W) -> (B, H, W, C)


class PatchDeEmbed(nn.Module):
    """Inverse of :class:`PatchEmbed` (ESC): 5x5 conv to C p_f p_t channels, pixel shuffle
    back to (F, T), 3x3 conv to C_out.

    Without autograd (inference) the three linear steps run as one conv on the patch grid
    (:meth:`forward_composed`): about 12x fewer multiply-accumulates, equal up to float
    rounding.
    """

    def __init__(self, dim: int, patch_size: tuple[int, int], out_channels: int):
        super().__init__()
        self.patch_size = tuple(patch_size)
        pf, pt = self.patch_size
        self.de_proj1 = nn.Conv2d(dim, dim * pf * pt, kernel_size=5, padding=2)
        self.de_proj2 = nn.Conv2d(dim, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, C_out, H p_f, W p_t)."""
        if not torch.is_grad_enabled() and x.device.type == "cpu":  # CPU inference path
            return self.forward_composed(x)
        b, h, w, _ = x.shape
        pf, pt = self.patch_size
        y = self.de_proj1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, C pf pt)
        y = y.reshape(b, h, w, pf, pt, -1).permute(0, 5, 1, 3, 2, 4)  # (B, C, H, pf, W, pt)
        return self.de_proj2(y.reshape(b, -1, h * pf, w * pt))  # (B, C_out, F, T)

    def grid_conv2(self) -> tuple[Tensor, Tensor]:
        """``de_proj2`` (3x3 on the (F, T) map) as a 3x3 conv on the patch grid: weight
        (C_out p_f p_t, C p_f p_t, 3, 3) and bias (C_out p_f p_t,). Input channel
        (i p_t + j) C + c is channel c at sub-position (i, j) of a patch (the order of
        ``de_proj1``'s outputs), output channel (o p_f + i) p_t + j is channel o there.

        The tap (a, b) in {-1, 0, 1}^2 of ``de_proj2`` at output sub-position (i2, j2)
        reads sub-position ((i2 + a) mod p_f, (j2 + b) mod p_t) of the patch
        (floor((i2 + a) / p_f), floor((j2 + b) / p_t)) away, an offset in {-1, 0, 1}^2.
        """
        pf, pt = self.patch_size
        w2 = self.de_proj2.weight  # (C_out, C, 3, 3)
        c_out, c = w2.shape[:2]
        weight = w2.new_zeros(c_out, pf, pt, pf, pt, c, 3, 3)
        for i2 in range(pf):
            for j2 in range(pt):
                for a in (-1, 0, 1):
                    for b in (-1, 0, 1):
                        dh, i = divmod(i2 + a, pf)
                        dw, j = divmod(j2 + b, pt)
                        weight[:, i2, j2, i, j, :, dh + 1, dw + 1] += w2[:, :, a + 1, b + 1]
        weight = weight.reshape(c_out * pf * pt, pf * pt * c, 3, 3)
        bias = self.de_proj2.bias.repeat_interleave(pf * pt)  # (C_out pf pt,)
        return weight, bias

    def forward_composed(self, x: Tensor) -> Tensor:
        """:meth:`forward` as one conv on the patch grid (inference).

        ``de_proj1`` (5x5, zero padding 2) followed by :meth:`grid_conv2` (3x3, zero
        padding 1 of the patch grid, which is exactly ``de_proj2``'s padding of the
        (F, T) map) is one 7x7 conv with padding 3 wherever the 3x3 neighbourhood lies
        inside the grid. On the outermost patch rows and columns the intermediate map is
        zero outside the grid (not ``de_proj1`` of the padded input), so those are
        computed in the two steps from a thin slab of the input.

        Args:
            x (Tensor): (B, H, W, C).

        Returns:
            Tensor: (B, C_out, H p_f, W p_t).
        """
        b, h, w, _ = x.shape
        pf, pt = self.patch_size
        x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        w1, b1 = self.de_proj1.weight, self.de_proj1.bias
        w2, b2 = self.grid_conv2()
        # (C_out pf pt, C, 7, 7): all taps of w2 * w1, composed in float32 (also for
        # bfloat16 weights)
        weight = F.conv_transpose2d(w2.float(), w1.float())
        bias = b2.float() + w2.float().sum(dim=(2, 3)) @ b1.float()
        y = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=3)  # (B, C_out pf pt, H, W)

        def exact(r0: int, r1: int, c0: int, c1: int) -> Tensor:
            # rows [r0, r1) and columns [c0, c1) of y in two steps: the intermediate map z
            # on the rows/columns [r0 - 1, r1 + 1) inside the grid, from x 2 further out
            zr = max(r0 - 1, 0), min(r1 + 1, h)
            zc = max(c0 - 1, 0), min(c1 + 1, w)
            xr = max(zr[0] - 2, 0), min(zr[1] + 2, h)
            xc = max(zc[0] - 2, 0), min(zc[1] + 2, w)
            xs = F.pad(
                x[:, :, xr[0] : xr[1], xc[0] : xc[1]],
                (2 - zc[0] + xc[0], 2 - xc[1] + zc[1], 2 - zr[0] + xr[0], 2 - xr[1] + zr[1]),
            )
            z = F.pad(
                F.conv2d(xs, w1, b1),
                (1 - c0 + zc[0], 1 - zc[1] + c1, 1 - r0 + zr[0], 1 - zr[1] + r1),
            )
            return F.conv2d(z, w2, b2)  # (B, C_out pf pt, r1 - r0, c1 - c0)

        y[:, :, :1] = exact(0, 1, 0, w)
        y[:, :, -1:] = exact(h - 1, h, 0, w)
        y[:, :, :, :1] = exact(0, h, 0, 1)
        y[:, :, :, -1:] = exact(0, h, w - 1, w)
        y = y.view(b, -1, pf, pt, h, w).permute(0, 1, 4, 2, 5, 3)  # (B, C_out, H, pf, W, pt)
        return y.reshape(b, -1, h * pf, w * pt)
