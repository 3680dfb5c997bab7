"""The 1-D denoising U-Net of LaDiffCodec's latent diffusion.

Architecture (Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
§4 and Appendix B: a PixelCNN++-style U-Net with group normalisation, sinusoidal time
embedding and self-attention at the lowest resolution; here in 1-D, as the denoising
U-Net that Yang, Jang, Kim, "Generative De-Quantization for Neural Speech Codec via
Latent Diffusion", ICASSP 2024, §2.2 and Fig. 1, run over the continuous autoencoder's
latent frames). Layer by layer, as the authors' ``Unet1D``:

* input: the noisy latent x_t (B, D, F) concatenated on channels with the condition
  (B, D_c, F) (the discrete codec's features aligned to F frames) -> Conv(k=7, ``dim``);
* time embedding: sinusoidal(t) of ``dim`` -> Linear(dim, 4 dim) -> GELU ->
  Linear(4 dim, 4 dim);
* for each level l with widths ``dims = [dim, dim * m for m in dim_mults]``: two residual
  blocks at ``dims[l]`` (each: [weight-standardised Conv(k=3) -> GroupNorm(``groups``) ->
  FiLM from the time embedding (scale + 1, shift) -> SiLU] -> [WS-Conv(k=3) -> GroupNorm ->
  SiLU] + a 1x1 skip where widths differ), a pre-normed residual linear attention
  (4 heads of 32, Shen et al. 2021) and a strided Conv(k=4, stride 2) to ``dims[l+1]``
  (the last level: Conv(k=3) without downsampling);
* middle: residual block, pre-normed residual softmax attention (4 heads of 32), residual
  block at ``dims[-1]``;
* mirror levels: two residual blocks taking the skip connections (concatenated), linear
  attention, nearest x2 upsampling + Conv(k=3) (the last level: Conv(k=3));
* output: concatenation with the first conv's output -> residual block(2 dim -> dim) ->
  tanh (the authors apply it before the projection) -> Conv(k=1, D).

The frame count F must be a multiple of ``2 ** (len(dim_mults) - 1)``
(:attr:`UNet1D.frame_multiple`); :class:`~codectk.diffusion.gaussian.GaussianDiffusion`
pads to it. With the authors' README configuration (``dim`` 256, ``dim_mults``
(1, 2, 2, 4, 4), D = 128 latent channels, D_c = 128 condition channels, 8 groups) the
network has 135,118,976 parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WSConv1d(nn.Conv1d):
    """Conv1d with weight standardisation (Qiao et al., "Micro-Batch Training with
    Batch-Channel Normalization and Weight Standardization", arXiv 1903.10520, eq. 5):
    each output filter is normalised to zero mean and unit variance before use."""

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, F) -> (B, C_out, F')."""
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        w = self.weight
        mean = w.mean(dim=(1, 2), keepdim=True)
        var = w.var(dim=(1, 2), unbiased=False, keepdim=True)
        w = (w - mean) * torch.rsqrt(var + eps)
        return F.conv1d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ChannelLayerNorm(nn.Module):
    """Layer norm over channels of (B, C, F) with a learned gain and no bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, F) -> (B, C, F)."""
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + eps) * self.g


class PreNormResidual(nn.Module):
    """x + fn(layer_norm(x))."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = ChannelLayerNorm(dim)
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, F) -> (B, C, F)."""
        return x + self.fn(self.norm(x))


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """Transformer-style sinusoidal embedding of diffusion steps.

    Args:
        t (Tensor): (B,) step indices (int or float).
        dim (int): embedding size (even).

    Returns:
        Tensor: (B, dim), [sin(t w_i), cos(t w_i)] with w_i = 10000^(-i / (dim/2 - 1)).
    """
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
    args = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat((args.sin(), args.cos()), dim=-1)


class ConvBlock(nn.Module):
    """WS-Conv(k=3) -> GroupNorm -> optional FiLM (x * (scale + 1) + shift) -> SiLU."""

    def __init__(self, dim: int, dim_out: int, groups: int):
        super().__init__()
        self.proj = WSConv1d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, scale_shift: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """(B, dim, F) -> (B, dim_out, F); scale and shift are (B, dim_out, 1)."""
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    """Two conv blocks, the first modulated by the time embedding, plus a skip.

    Args:
        dim (int): input channels.
        dim_out (int): output channels (a 1x1 conv skip when they differ).
        time_dim (int): size of the time embedding.
        groups (int): GroupNorm groups.
    """

    def __init__(self, dim: int, dim_out: int, time_dim: int, groups: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out * 2))
        self.block1 = ConvBlock(dim, dim_out, groups)
        self.block2 = ConvBlock(dim_out, dim_out, groups)
        self.res_conv = nn.Conv1d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: Tensor, t_emb: Tensor) -> Tensor:
        """x (B, dim, F), t_emb (B, time_dim) -> (B, dim_out, F)."""
        scale, shift = self.mlp(t_emb)[:, :, None].chunk(2, dim=1)  # 2 x (B, dim_out, 1)
        h = self.block2(self.block1(x, (scale, shift)))
        return h + self.res_conv(x)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    b, c, n = x.shape
    return x.reshape(b, heads, c // heads, n)  # (B, C, F) -> (B, h, d, F)


class LinearAttention(nn.Module):
    """Linear attention (Shen et al., "Efficient Attention", WACV 2021): softmax over the
    feature axis for queries and over time for keys; cost linear in F."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        hidden = heads * dim_head
        self.to_qkv = nn.Conv1d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv1d(hidden, dim, 1), ChannelLayerNorm(dim))

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, F) -> (B, dim, F)."""
        b, _, n = x.shape
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)  # (B, h, d, d)
        out = torch.einsum("bhde,bhdn->bhen", context, q)  # (B, h, d, F)
        return self.to_out(out.reshape(b, -1, n))  # (B, h*d, F)


class Attention(nn.Module):
    """Multi-head softmax self-attention over frames (Vaswani et al. 2017, eq. 1)."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        hidden = heads * dim_head
        self.to_qkv = nn.Conv1d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv1d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, F) -> (B, dim, F)."""
        b, _, n = x.shape
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))
        # (B, h, d, F) -> (B, h, F, d) for scaled_dot_product_attention
        out = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        return self.to_out(out.transpose(-1, -2).reshape(b, -1, n))  # (B, h*d, F)


class Upsample(nn.Sequential):
    """Nearest x2 upsampling then Conv(k=3)."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(dim, dim_out, 3, 1, 1)
        )


class UNet1D(nn.Module):
    """Denoiser eps_theta(x_t, t, c) over latent frames (see the module docstring).

    Args:
        channels (int): D, channels of the latent x_t and of the output.
        cond_channels (int): D_c, channels of the condition concatenated to x_t (0: an
            unconditional model).
        dim (int): base width (the authors' ``diff_dims``).
        dim_mults (Sequence[int]): width multipliers per level; all but the last level
            halve the frame rate.
        groups (int): GroupNorm groups of the residual blocks (``resnet_block_groups``).
        attn_heads (int): attention heads (linear and middle attention).
        attn_dim_head (int): channels per head.

    Raises:
        ValueError: a width that ``groups`` does not divide, or empty ``dim_mults``.
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int = 0,
        dim: int = 256,
        dim_mults: Sequence[int] = (1, 2, 2, 4, 4),
        groups: int = 8,
        attn_heads: int = 4,
        attn_dim_head: int = 32,
    ):
        super().__init__()
        mults = [int(m) for m in dim_mults]
        if not mults or any(m < 1 for m in mults):
            raise ValueError(f"dim_mults must be positive ints, got {list(dim_mults)}")
        dims = [dim, *(dim * m for m in mults)]
        if any(d % groups for d in dims):
            raise ValueError(f"GroupNorm groups {groups} must divide every width {dims}")
        if dim % 2:
            raise ValueError(f"dim {dim} must be even (sinusoidal time embedding)")
        self.channels, self.cond_channels, self.dim = channels, cond_channels, dim
        self.frame_multiple = 2 ** (len(mults) - 1)
        time_dim = dim * 4
        attn = dict(heads=attn_heads, dim_head=attn_dim_head)
        self.init_conv = nn.Conv1d(channels + cond_channels, dim, 7, padding=3)
        self.time_mlp = nn.Sequential(
            nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        pairs = list(zip(dims[:-1], dims[1:]))
        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(
                nn.ModuleList(
                    [
                        ResnetBlock(d_in, d_in, time_dim, groups),
                        ResnetBlock(d_in, d_in, time_dim, groups),
                        PreNormResidual(d_in, LinearAttention(d_in, **attn)),
                        nn.Conv1d(d_in, d_out, 3, padding=1)
                        if last
                        else nn.Conv1d(d_in, d_out, 4, 2, 1),
                    ]
                )
            )
        mid = dims[-1]
        self.mid_block1 = ResnetBlock(mid, mid, time_dim, groups)
        self.mid_attn = PreNormResidual(mid, Attention(mid, **attn))
        self.mid_block2 = ResnetBlock(mid, mid, time_dim, groups)
        self.ups = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(reversed(pairs)):
            last = i == len(pairs) - 1
            self.ups.append(
                nn.ModuleList(
                    [
                        ResnetBlock(d_out + d_in, d_out, time_dim, groups),
                        ResnetBlock(d_out + d_in, d_out, time_dim, groups),
                        PreNormResidual(d_out, LinearAttention(d_out, **attn)),
                        nn.Conv1d(d_out, d_in, 3, padding=1) if last else Upsample(d_out, d_in),
                    ]
                )
            )
        self.final_res_block = ResnetBlock(dim * 2, dim, time_dim, groups)
        self.final_conv = nn.Conv1d(dim, channels, 1)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """Predict the network target (noise, v or x_0) for noisy latents.

        Args:
            x (Tensor): x_t, (B, D, F) with F a multiple of :attr:`frame_multiple`.
            t (Tensor): (B,) diffusion step indices.
            cond (Tensor | None): (B, D_c, F) condition at the same frame count (None
                only for an unconditional model).

        Returns:
            Tensor: (B, D, F).

        Raises:
            ValueError: a frame count that is not a multiple of :attr:`frame_multiple`,
                or a condition missing, unexpected or of another shape.
        """
        if x.shape[-1] % self.frame_multiple:
            raise ValueError(
                f"frame count {x.shape[-1]} must be a multiple of {self.frame_multiple}"
            )
        if self.cond_channels:
            if cond is None or cond.shape != (x.shape[0], self.cond_channels, x.shape[-1]):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(
                    f"condition must be (B, {self.cond_channels}, {x.shape[-1]}) "
                    f"for x {tuple(x.shape)}, got {got}"
                )
            x = torch.cat((cond, x), dim=1)  # (B, D_c + D, F)
        elif cond is not None:
            raise ValueError("this U-Net is unconditional (cond_channels 0) but got a condition")
        x = self.init_conv(x)
        r = x.clone()
        t_emb = self.time_mlp(sinusoidal_embedding(t, self.dim))
        skips = []
        for block1, block2, attn, down in self.downs:
            x = block1(x, t_emb)
            skips.append(x)
            x = attn(block2(x, t_emb))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t_emb)), t_emb)
        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat((x, skips.pop()), dim=1), t_emb)
            x = attn(block2(torch.cat((x, skips.pop()), dim=1), t_emb))
            x = up(x)
        x = self.final_res_block(torch.cat((x, r), dim=1), t_emb)
        return self.final_conv(torch.tanh(x))
