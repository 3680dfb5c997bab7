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
and the shift mask are added into one (windows, heads, N, N) bias, cached per grid size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b * nw, n, 3, self.num_heads, c // self.num_heads)
        # Strided views (B*nW, nH, N, d), no copies; SDPA's CPU kernel writes its output
        # as (B*nW, N, nH, d), so the transpose back below is free.
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
        bias = self.position_bias()[None].to(q.dtype)  # (1, nH, N, N)
        if mask is not None:
            bias = (bias + mask[:, None].to(q.dtype)).repeat(b, 1, 1, 1)  # (B*nW, nH, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B*nW, nH, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, nw, n, c))


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
        this (H, W) (see :class:`WindowGrid`)."""
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
        self.mask = shift_mask(self.hp, self.wp, ws, shift).to(device) if shift else None

    def indices(self, shift: int) -> tuple[Tensor, Tensor]:
        """(part, unpart) LongTensors for a block with this shift."""
        return self._indices[shift]


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
        if scale not in (None, "down", "up"):
            raise ValueError(f"scale {scale!r} not supported; choose 'down', 'up' or None")
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
    back to (F, T), 3x3 conv to C_out."""

    def __init__(self, dim: int, patch_size: tuple[int, int], out_channels: int):
        super().__init__()
        self.patch_size = tuple(patch_size)
        pf, pt = self.patch_size
        self.de_proj1 = nn.Conv2d(dim, dim * pf * pt, kernel_size=5, padding=2)
        self.de_proj2 = nn.Conv2d(dim, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, C_out, H p_f, W p_t)."""
        b, h, w, _ = x.shape
        pf, pt = self.patch_size
        y = self.de_proj1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, C pf pt)
        y = y.reshape(b, h, w, pf, pt, -1).permute(0, 5, 1, 3, 2, 4)  # (B, C, H, pf, W, pt)
        return self.de_proj2(y.reshape(b, -1, h * pf, w * pt))  # (B, C_out, F, T)
