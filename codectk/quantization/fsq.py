"""Finite scalar quantisation (FSQ).

Mentzer, Minnen, Agustsson, Tschannen, "Finite Scalar Quantization: VQ-VAE Made Simple",
ICLR 2024 (arXiv 2309.15505), §3 and Appendix A.1:

* Each of the d dimensions of a frame is bounded and rounded to one of L_i levels:
  eq. (1) f(z) = ⌊L/2⌋ tanh(z) (for even L the paper's code shifts the tanh by
  atanh(0.5 / h) and subtracts 0.5, with h = (L - 1)(1 + eps) / 2, so that exactly L
  integers are reachable), eq. (2) ẑ = round(f(z)) with the straight-through estimator
  ẑ = f(z) + sg(round(f(z)) - f(z)). ẑ is rescaled by ⌊L/2⌋ to lie in [-1, 1].
* The implied codebook is the product set of the levels, of size prod(L_i); a frame's
  index is the mixed-radix number sum_i (ẑ_i + ⌊L_i/2⌋) * prod_{j<i} L_j.
* There are no codebook parameters, no commitment or codebook loss and no codebook
  collapse; the paper's recommended levels for 2^10 codes are [8, 5, 5, 5].

Mapping onto the codec interface (DESIGN.md, "Codec interface"): the latent (B, D, F) is
projected per frame (linear, only when D != K * d) to K groups of d = len(levels)
dimensions; group k gives codebook k, so codes are (B, K, F) with values in
[0, codebook_size) and ``codebook_size = prod(levels)``; each codebook carries
log2(prod(levels)) bits per frame. With ``n_quantizers = K' < K`` the groups k >= K' are
left out (their values are 0, the centre level) and codes are (B, K', F).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from codectk.quantization import QUANTIZERS
from codectk.quantization.base import Quantizer, QuantizerOutput


def round_ste(x: Tensor) -> Tensor:
    """Round to the nearest integer, with an identity gradient (FSQ eq. 2)."""
    return x + (x.round() - x).detach()


@QUANTIZERS.register("fsq")
class FiniteScalarQuantizer(Quantizer):
    """FSQ over (B, D, F) latents, K codebooks of ``prod(levels)`` implicit codewords.

    Args:
        dimension (int): latent dimension D.
        levels (list[int] | None): levels L_i per dimension of a group, each >= 2
            (default [8, 5, 5, 5], 1000 codes).
        n_codebooks (int): groups K; the latent is projected to K * len(levels) dims.
        eps (float): margin of the bound so that tanh never reaches the outer levels'
            rounding boundary (Appendix A.1, 1e-3).

    Raises:
        ValueError: for fewer than one level, a level < 2, or ``n_codebooks < 1``.
    """

    def __init__(
        self,
        dimension: int = 128,
        levels: list[int] | None = None,
        n_codebooks: int = 1,
        eps: float = 1e-3,
    ):
        levels = [8, 5, 5, 5] if levels is None else list(levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"levels must be a non-empty list of ints >= 2, got {levels}")
        if n_codebooks < 1:
            raise ValueError(f"n_codebooks must be >= 1, got {n_codebooks}")
        super().__init__(n_codebooks, math.prod(levels))
        self.dimension = dimension
        self.levels = levels
        self.eps = eps
        d = len(levels)
        project = dimension != n_codebooks * d
        self.project_in: nn.Module = (
            nn.Linear(dimension, n_codebooks * d) if project else nn.Identity()
        )
        self.project_out: nn.Module = (
            nn.Linear(n_codebooks * d, dimension) if project else nn.Identity()
        )
        basis = [math.prod(levels[:i]) for i in range(d)]
        self.register_buffer("_levels", torch.tensor(levels), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis), persistent=False)

    @property
    def half_width(self) -> Tensor:
        """⌊L_i / 2⌋ per dimension, shape (d,), float."""
        return (self._levels // 2).float()

    def bound(self, x: Tensor) -> Tensor:
        """f(z) of eq. (1) with the even-level shift: (..., d) -> (..., d) in (-L/2, L/2)."""
        levels = self._levels.float()
        half = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(x + shift) * half - offset

    def quantize(self, x: Tensor) -> Tensor:
        """Bounded, rounded (straight-through) and rescaled values in [-1, 1]: (..., d)."""
        return round_ste(self.bound(x)) / self.half_width

    def values_to_codes(self, values: Tensor) -> Tensor:
        """Mixed-radix index of quantised values.

        Args:
            values (Tensor): (..., d) on the grid ``(a - ⌊L/2⌋) / ⌊L/2⌋``, a in [0, L).

        Returns:
            Tensor: LongTensor (...) in [0, codebook_size).
        """
        digits = (values * self.half_width + self.half_width).round().long()  # (..., d)
        return (digits * self._basis).sum(-1)

    def codes_to_values(self, codes: Tensor) -> Tensor:
        """Inverse of :meth:`values_to_codes`: LongTensor (...) -> values (..., d)."""
        digits = (codes.long()[..., None] // self._basis) % self._levels  # (..., d)
        return (digits.float() - self.half_width) / self.half_width

    def _groups(self, z: Tensor) -> Tensor:
        if z.dim() != 3 or z.shape[1] != self.dimension:
            raise ValueError(f"z must be (B, {self.dimension}, F), got {tuple(z.shape)}")
        x = self.project_in(z.transpose(1, 2))  # (B, D, F) -> (B, F, K * d)
        return x.unflatten(-1, (self.n_codebooks, len(self.levels)))  # -> (B, F, K, d)

    def _output(self, values: Tensor, n: int, dtype: torch.dtype) -> Tensor:
        """(B, F, K, d) values with groups >= n zeroed -> z_q (B, D, F)."""
        if n < self.n_codebooks:
            keep = torch.arange(self.n_codebooks, device=values.device) < n  # (K,)
            values = values * keep[:, None].to(values.dtype)  # (K, 1) broadcast over d
        z_q = self.project_out(values.flatten(2))  # (B, F, K, d) -> (B, F, D)
        return z_q.transpose(1, 2).to(dtype)  # (B, F, D) -> (B, D, F)

    def forward(self, z: Tensor, n_quantizers: int | None = None) -> QuantizerOutput:
        """Quantise (eq. 1-2) with a straight-through gradient.

        Args:
            z (Tensor): latents (B, D, F).
            n_quantizers (int | None): K' groups kept (None: all K).

        Returns:
            QuantizerOutput: z_q (B, D, F), codes (B, K', F), zero commitment and codebook
            losses (FSQ has neither), K'.

        Raises:
            ValueError: for a bad ``z`` shape or ``n_quantizers``.
        """
        n = self.check_n_quantizers(n_quantizers)
        values = self.quantize(self._groups(z))  # (B, F, K, d)
        codes = self.values_to_codes(values.detach())[..., :n]  # (B, F, K')
        z_q = self._output(values, n, z.dtype)
        zero = z.new_zeros(())
        return QuantizerOutput(
            z_q=z_q,
            codes=codes.transpose(1, 2).contiguous(),  # (B, F, K') -> (B, K', F)
            commitment_loss=zero,
            codebook_loss=zero,
            n_quantizers=n,
        )

    def encode(self, z: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Codes of latents.

        Args:
            z (Tensor): (B, D, F).
            n_quantizers (int | None): K' (None: all K).

        Returns:
            Tensor: LongTensor (B, K', F).

        Raises:
            ValueError: for a bad ``z`` shape or ``n_quantizers``.
        """
        n = self.check_n_quantizers(n_quantizers)
        codes = self.values_to_codes(self.quantize(self._groups(z)))[..., :n]  # (B, F, K')
        return codes.transpose(1, 2).contiguous()  # (B, F, K') -> (B, K', F)

    def decode(self, codes: Tensor) -> Tensor:
        """Quantised latents of codes.

        Args:
            codes (Tensor): integer (B, K', F), 1 <= K' <= K, values in [0, codebook_size).

        Returns:
            Tensor: z_q (B, D, F), float32.

        Raises:
            ValueError: for codes that are not (B, K', F) with 1 <= K' <= K.
        """
        if codes.dim() != 3:
            raise ValueError(f"codes must be (B, K', F), got {tuple(codes.shape)}")
        n = self.check_n_quantizers(codes.shape[1])
        values = self.codes_to_values(codes.transpose(1, 2))  # (B, F, K', d)
        if n < self.n_codebooks:
            pad = values.new_zeros(*values.shape[:2], self.n_codebooks - n, values.shape[-1])
            values = torch.cat([values, pad], dim=2)  # (B, F, K, d)
        return self._output(values, n, torch.float32)
