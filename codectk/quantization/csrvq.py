"""Cross-scale residual vector quantization (CSRVQ) of ESC, with product quantizers.

Gu and Diao, "ESC: Efficient Speech Coding with Cross-Scale Residual Vector Quantized
Transformers", EMNLP 2024 (arXiv 2404.19441), §3.2 and the authors' ``csrvq.py`` /
``quantization.py``:

* One **stream** per decoder scale. Stream 1 quantizes the encoder's bottom feature
  e_S; stream s > 1 quantizes the residual r_s = e_{S-s+2} - d_s between the encoder
  feature and the decoder's current feature at the same scale (eq. 2), and the decoder
  continues from d_s + Q(r_s) (eq. 3). A stream that is not transmitted leaves d_s as is.
* Each stream is a **product VQ** (:class:`ProductVectorQuantizer`): the (C, H) feature
  of ``overlap`` consecutive time patches is flattened (channel-major, as the authors'
  ``b (h w) c -> b w (c h)``) into one vector of ``overlap * C * H`` values, split into
  ``groups`` equal slices, and each slice is quantized by its own codebook after a linear
  down projection (no bias) to ``codebook_dim``; the codeword is projected back up.
* Codebooks are factorized and L2-normalised as in DAC (Kumar et al. 2023 §3.2, after
  ViT-VQGAN): nearest codeword by cosine similarity
  (:func:`codectk.quantization.factorized_vq.l2_nearest_codes`), the unnormalised codeword
  is used; commitment ||z_e - sg(e)||^2 and codebook ||sg(z_e) - e||^2 losses (VQ-VAE
  eq. 3), means over (frames, codebook_dim) per example, averaged over the groups of a
  stream; straight-through estimator. Codebooks are ``nn.Embedding`` parameters
  initialised with Kaiming normal (the authors' final code; no k-means).
* ``bypass``: the authors' pre-training phase (``freeze_vq``) -- the down/up
  projections run but the codeword lookup is skipped (z_q = up(down(z))), with zero
  losses.
* Stream dropout (the authors' ``quantization_dropout``): with probability ``dropout_rate``
  a batch uses S' ~ U{1..S} streams, otherwise all S; the ladder of codebook counts is
  ``groups``, 2 ``groups``, ..., S ``groups`` (whole streams).
* In training, the parameters of the streams not transmitted (and, in pre-training, the
  codebooks) get zero gradients, not none, as in the authors' forward, which runs them
  and multiplies them by 0: AdamW's weight decay and momentum keep moving them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from codectk.quantization import QUANTIZERS
from codectk.quantization.base import Quantizer, QuantizerPart
from codectk.quantization.dropout import QuantizerDropout
from codectk.quantization.factorized_vq import l2_nearest_codes


@dataclass
class ProductQuantizerOutput:
    """What :meth:`ProductVectorQuantizer.forward` returns.

    Attributes:
        z_q (Tensor): quantized feature (B, H, W, C), straight-through gradient.
        codes (Tensor): LongTensor (B, groups, F), F = W / overlap.
        commitment_loss (Tensor): (B,), averaged over groups.
        codebook_loss (Tensor): (B,), averaged over groups.
    """

    z_q: Tensor
    codes: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor


def split_dimension(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` slices, the last one taking the remainder (authors')."""
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


class ProductVectorQuantizer(QuantizerPart):
    """One ESC stream: product VQ of (C, H) x ``overlap`` frame vectors (see module doc).

    Args:
        dim (int): channels C of the feature.
        n_freq (int): frequency patches H at this scale.
        overlap (int): time patches per code frame.
        groups (int): codebooks (product factors) per frame.
        codebook_size (int): codewords per codebook.
        codebook_dim (int): lookup dimension of every codebook.

    Raises:
        ValueError: for a non-positive size.
    """

    def __init__(
        self,
        dim: int,
        n_freq: int,
        overlap: int,
        groups: int,
        codebook_size: int,
        codebook_dim: int,
    ):
        super().__init__()
        if min(dim, n_freq, overlap, groups, codebook_size, codebook_dim) < 1:
            raise ValueError(
                f"dim {dim}, n_freq {n_freq}, overlap {overlap}, groups {groups}, "
                f"codebook_size {codebook_size}, codebook_dim {codebook_dim} must be positive"
            )
        self.dim, self.n_freq, self.overlap, self.groups = dim, n_freq, overlap, groups
        self.codebook_size, self.codebook_dim = codebook_size, codebook_dim
        self.vq_dims = split_dimension(overlap * dim * n_freq, groups)
        self.codebooks = nn.ModuleList(
            nn.Embedding(codebook_size, codebook_dim) for _ in range(groups)
        )
        for cb in self.codebooks:
            nn.init.kaiming_normal_(cb.weight)
        self.down_projs = nn.ModuleList(
            nn.Linear(d, codebook_dim, bias=False) for d in self.vq_dims
        )
        self.up_projs = nn.ModuleList(nn.Linear(codebook_dim, d, bias=False) for d in self.vq_dims)

    def to_vectors(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, W / overlap, overlap * C * H).

        Raises:
            ValueError: H differs from ``n_freq`` or W is not a multiple of ``overlap``.
        """
        b, h, w, c = x.shape
        if h != self.n_freq or c != self.dim or w % self.overlap:
            raise ValueError(
                f"feature (B, H, W, C) = {tuple(x.shape)} must have H = {self.n_freq}, "
                f"C = {self.dim} and W a multiple of {self.overlap}"
            )
        x = x.permute(0, 2, 3, 1).reshape(b, w, c * h)  # (B, W, C*H), channel-major
        return x.reshape(b, w // self.overlap, -1)  # (B, F, overlap*C*H)

    def from_vectors(self, v: Tensor) -> Tensor:
        """Inverse of :meth:`to_vectors`: (B, F, overlap * C * H) -> (B, H, F * overlap, C)."""
        b, f, _ = v.shape
        v = v.reshape(b, f * self.overlap, self.dim, self.n_freq)  # (B, W, C, H)
        return v.permute(0, 3, 1, 2)  # (B, H, W, C)

    def _lookup(self, z_e: Tensor, g: int) -> Tensor:
        b, f, d = z_e.shape
        flat = z_e.reshape(b * f, d)  # (B, F, D_c) -> (B * F, D_c)
        return l2_nearest_codes(flat, self.codebooks[g].weight).view(b, f)

    def forward(self, x: Tensor, bypass: bool = False) -> ProductQuantizerOutput:
        """Quantize a feature (training or evaluation).

        Args:
            x (Tensor): (B, H, W, C).
            bypass (bool): skip the lookup (pre-training): z_q = up(down(x)), zero losses.

        Returns:
            ProductQuantizerOutput: z_q (B, H, W, C), codes (B, groups, F), losses (B,).
        """
        v = self.to_vectors(x)
        outs, codes = [], []
        commit = codebook = v.new_zeros(v.shape[0])
        for g, z in enumerate(v.split(self.vq_dims, dim=-1)):
            z_e = self.down_projs[g](z)  # (B, F, D_c)
            code = self._lookup(z_e.detach(), g)
            codes.append(code)
            if bypass:
                q = z_e
            else:
                e = self.codebooks[g](code)  # (B, F, D_c), unnormalised codeword
                commit = commit + (z_e - e.detach()).pow(2).mean(dim=(1, 2))
                codebook = codebook + (e - z_e.detach()).pow(2).mean(dim=(1, 2))
                q = z_e + (e - z_e).detach()  # straight-through
            outs.append(self.up_projs[g](q))
        z_q = self.from_vectors(torch.cat(outs, dim=-1))
        return ProductQuantizerOutput(
            z_q, torch.stack(codes, dim=1), commit / self.groups, codebook / self.groups
        )

    def encode(self, x: Tensor) -> Tensor:
        """Codes (B, groups, F) of a feature (B, H, W, C)."""
        v = self.to_vectors(x)
        codes = [
            self._lookup(self.down_projs[g](z), g)
            for g, z in enumerate(v.split(self.vq_dims, dim=-1))
        ]
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Quantized feature (B, H, F * overlap, C) of codes (B, groups, F)."""
        outs = [self.up_projs[g](self.codebooks[g](codes[:, g])) for g in range(self.groups)]
        return self.from_vectors(torch.cat(outs, dim=-1))


@QUANTIZERS.register("csrvq")
class CrossScaleRVQ(Quantizer):
    """The streams of ESC, bottom (coarsest) first, and the cross-scale residual loop.

    The decoder is passed in as ``blocks`` (stream s > 1 is applied before
    ``blocks[s - 2]``; each block maps (B, H, W, C_s) to the next scale), so the loop is
    not a float32 island; each stream (:class:`ProductVectorQuantizer`) is. The ladder
    steps by whole streams of ``groups`` codebooks.

    Args:
        dims (list[int]): channels C of the feature each stream quantizes (S values).
        n_freqs (list[int]): frequency patches H at each stream's scale.
        overlap (int): time patches per code frame.
        groups (int): codebooks per stream.
        codebook_size (int): codewords per codebook.
        codebook_dims (list[int]): lookup dimension of each stream's codebooks.
        dropout_rate (float): stream dropout probability (the policy drawn by
            :meth:`~codectk.quantization.base.Quantizer.sample_n_quantizers`).

    Raises:
        ValueError: lists of different lengths, or ``dropout_rate`` outside [0, 1].
    """

    float32_island = False
    step_name = "stream"

    def __init__(
        self,
        dims: list[int],
        n_freqs: list[int],
        overlap: int,
        groups: int,
        codebook_size: int,
        codebook_dims: list[int],
        dropout_rate: float = 0.0,
    ):
        if not len(dims) == len(n_freqs) == len(codebook_dims) >= 1:
            raise ValueError(
                f"dims {dims}, n_freqs {n_freqs} and codebook_dims {codebook_dims} need one "
                "value per stream"
            )
        super().__init__(len(dims) * groups, codebook_size, groups, _stream_dropout(dropout_rate))
        self.n_streams, self.groups = len(dims), groups
        self.streams = nn.ModuleList(
            ProductVectorQuantizer(d, h, overlap, groups, codebook_size, cd)
            for d, h, cd in zip(dims, n_freqs, codebook_dims)
        )

    def forward(
        self, enc: list[Tensor], blocks: nn.ModuleList, n_streams: int, bypass: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Quantize and decode through ``blocks`` with the first ``n_streams`` streams.

        Args:
            enc (list[Tensor]): encoder features, coarsest first; ``enc[s]`` is what stream
                s + 2 refines (``enc[0]`` feeds streams 1 and 2).
            blocks (nn.ModuleList): the S - 1 decoder stages.
            n_streams (int): streams transmitted (1..S); the others are skipped.
            bypass (bool): pre-training (every stream, no lookup, zero losses).

        Returns:
            tuple: decoder output (B, H, W, C) after the last block; codes LongTensor
            (B, n_streams * groups, F); commitment and codebook losses (B,), summed over
            the transmitted streams.
        """
        q = self.streams[0](enc[0], bypass)
        dec, codes = q.z_q, [q.codes]
        commit, codebook = q.commitment_loss, q.codebook_loss
        for i, block in enumerate(blocks):
            if i < n_streams - 1:
                q = self.streams[i + 1](enc[i] - dec, bypass)
                dec = dec + q.z_q
                codes.append(q.codes)
                commit, codebook = commit + q.commitment_loss, codebook + q.codebook_loss
            dec = block(dec)
        if self.training and torch.is_grad_enabled():
            commit = commit + self._idle_zero(n_streams, bypass)
        return dec, torch.cat(codes, dim=1), commit, codebook

    def _idle_zero(self, n_streams: int, bypass: bool) -> Tensor:
        """0 x the parameters a training forward leaves out: the streams not transmitted
        and, in pre-training, the codebooks. The authors' forward runs them and multiplies
        their outputs and losses by 0 (``csrvq.py:43-45``, ``quantization.py:38-41``), so
        they get zero gradients, not none: AdamW then still applies its weight decay and
        its momentum to them, and counts their steps. Added to the commitment loss, this
        gives them the same zero gradients without running them."""
        idle = [p for q in self.streams[n_streams:] for p in q.parameters()]
        if bypass:
            idle += [p for q in self.streams[:n_streams] for p in q.codebooks.parameters()]
        if not idle:
            return torch.zeros((), device=self.streams[0].codebooks[0].weight.device)
        return 0.0 * torch.stack([p.sum() for p in idle]).sum()

    def encode(self, enc: list[Tensor], blocks: nn.ModuleList, n_streams: int) -> Tensor:
        """Codes (B, n_streams * groups, F); runs only the decoder blocks it needs."""
        codes = [self.streams[0].encode(enc[0])]
        dec = None
        for i in range(n_streams - 1):
            dec = self.streams[0].decode(codes[0]) if dec is None else dec
            code = self.streams[i + 1].encode(enc[i] - dec)
            codes.append(code)
            if i + 1 < n_streams - 1:
                dec = blocks[i](dec + self.streams[i + 1].decode(code))
        return torch.cat(codes, dim=1)

    def decode(self, codes: Tensor, blocks: nn.ModuleList) -> Tensor:
        """Decoder output (B, H, W, C) of codes (B, s * groups, F), s streams."""
        per_stream = codes.split(self.groups, dim=1)
        dec = self.streams[0].decode(per_stream[0])
        for i, block in enumerate(blocks):
            if i + 1 < len(per_stream):
                dec = dec + self.streams[i + 1].decode(per_stream[i + 1])
            dec = block(dec)
        return dec


def _stream_dropout(rate: float) -> QuantizerDropout:
    """ESC's stream-dropout policy (a coin on every batch, then S' ~ U{1..S})."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout_rate {rate} must lie in [0, 1]")
    return QuantizerDropout(rate, coin="always")


def stream_dropout(max_streams: int, rate: float, generator: torch.Generator | None = None) -> int:
    """ESC's quantization dropout: with probability ``rate`` a batch uses S' ~ U{1..S}
    streams, otherwise all S (the authors' ``quantization_dropout``), drawn from
    ``generator`` (None: the global one) as :class:`CrossScaleRVQ` draws it.

    Raises:
        ValueError: ``rate`` outside [0, 1].
    """
    ladder = list(range(1, max_streams + 1))
    policy = _stream_dropout(rate)
    return policy.sample(ladder, torch.device("cpu"), sync_free=False, generator=generator)


__all__ = [
    "CrossScaleRVQ",
    "ProductQuantizerOutput",
    "ProductVectorQuantizer",
    "split_dimension",
    "stream_dropout",
]
