"""Residual VQ with factorized, L2-normalised codebooks trained by gradient (DAC).

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), NeurIPS 2023,
§3.2, after Yu et al., "Vector-quantized Image Modeling with Improved VQGAN" (ViT-VQGAN),
ICLR 2022, §3.2:

* Factorized codes: each stage projects the residual (B, D, F) to a low dimension
  D_c = ``codebook_dim`` (8) with a weight-normalised 1x1 conv ``in_proj``, looks the
  codeword up there and projects back with ``out_proj`` (D_c -> D).
* L2-normalised lookup: code = argmin_j || l2n(z_e) - l2n(e_j) ||^2, i.e. cosine
  similarity; the codeword used is the *unnormalised* e_j.
* Losses (VQ-VAE eq. 3, van den Oord et al. 2017), per stage i and example b:
  commitment ||z_e - sg(e)||^2 and codebook ||sg(z_e) - e||^2, means over (D_c, F);
  straight-through z_q = z_e + sg(e - z_e). As in the authors' code, the per-stage
  losses are masked by quantizer dropout, averaged over the batch and *summed* over
  stages; DAC weights them 0.25 (commitment) and 1 (codebook) in the generator loss.
* Quantizer dropout (DAC §3.2, p = 0.5), drawn as the authors' ``ResidualVectorQuantize``
  (``dac/nn/quantize.py:166-171``): every training forward draws K'_b ~ U{1..K} for all B
  examples from the global CPU generator (B numbers, whatever p, so the random stream
  advances as theirs), the first floor(B * p) examples use their K'_b and the others all
  K. All K stages run on the whole batch and a per-example mask drops the later stages'
  contributions, so a stage no example uses gets zero gradients (not none), and the
  optimizer still decays its weights and moments, as in the authors' training.

Codebooks are ``nn.Embedding`` weights (parameters, N(0, 1) init), not EMA buffers, so
DDP synchronises them through their gradients like any other parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from codectk.quantization import QUANTIZERS
from codectk.quantization.base import (
    QuantizerOutput,
    QuantizerPart,
    ResidualQuantizer,
    residual_loop,
)
from codectk.quantization.dropout import dropout_policy


def l2_nearest_codes(x: Tensor, codebook: Tensor) -> Tensor:
    """Index of the codeword with the largest cosine similarity (L2-normalised lookup).

    Args:
        x (Tensor): (N, D_c) vectors.
        codebook (Tensor): (V, D_c) codewords.

    Returns:
        Tensor: LongTensor (N,) in [0, V).
    """
    x = F.normalize(x, dim=1)
    codebook = F.normalize(codebook, dim=1)
    # Squared distances of the normalised vectors (= 2 - 2 cos), written out in full as
    # the authors do so that ties break identically.
    dist = (
        x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)[None, :]
    )  # (N, V)
    return dist.argmin(dim=1)  # (N,)


class FactorizedVectorQuantizer(QuantizerPart):
    """One factorized, L2-normalised VQ stage (DAC ``VectorQuantize``).

    Args:
        dim (int): latent dimension D.
        codebook_size (int): codewords V.
        codebook_dim (int): lookup dimension D_c.

    Raises:
        ValueError: for a non-positive size.
    """

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int = 8):
        super().__init__()
        if min(dim, codebook_size, codebook_dim) < 1:
            raise ValueError(
                f"dim {dim}, codebook_size {codebook_size} and codebook_dim {codebook_dim} "
                "must be positive"
            )
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.in_proj = weight_norm(nn.Conv1d(dim, codebook_dim, 1))
        self.out_proj = weight_norm(nn.Conv1d(codebook_dim, dim, 1))
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def lookup(self, z_e: Tensor) -> Tensor:
        """Codes of projected latents.

        Args:
            z_e (Tensor): (B, D_c, F).

        Returns:
            Tensor: LongTensor (B, F).
        """
        b = z_e.shape[0]
        flat = z_e.transpose(1, 2).reshape(-1, self.codebook_dim)  # (B, D_c, F) -> (B*F, D_c)
        return l2_nearest_codes(flat, self.codebook.weight).view(b, -1)  # (B*F,) -> (B, F)

    def embed(self, codes: Tensor) -> Tensor:
        """Unnormalised codewords (B, D_c, F) of codes (B, F)."""
        return self.codebook(codes.long()).transpose(1, 2)  # (B, F, D_c) -> (B, D_c, F)

    def forward(self, z: Tensor, per_example: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Quantise with the straight-through estimator.

        Args:
            z (Tensor): (B, D, F).
            per_example (bool): losses per example (B,), as DAC; else their batch means.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: z_q (B, D, F) (the projected codeword,
            straight-through gradient to z); codes LongTensor (B, F); commitment and
            codebook losses, means over (D_c, F), per example (B,) or over the batch.
        """
        z_e = self.in_proj(z)  # (B, D_c, F)
        codes = self.lookup(z_e.detach())
        e = self.embed(codes)  # (B, D_c, F)
        commitment = (z_e - e.detach()).pow(2).mean(dim=(1, 2))  # (B,)
        codebook = (e - z_e.detach()).pow(2).mean(dim=(1, 2))  # (B,)
        if not per_example:
            commitment, codebook = commitment.mean(), codebook.mean()
        q = z_e + (e - z_e).detach()  # straight-through: forward e, backward identity
        return self.out_proj(q), codes, commitment, codebook

    def encode(self, z: Tensor) -> Tensor:
        """Codes (B, F) of latents (B, D, F)."""
        return self.lookup(self.in_proj(z))

    def decode(self, codes: Tensor) -> Tensor:
        """Quantised latents (B, D, F) of codes (B, F)."""
        return self.out_proj(self.embed(codes))


@QUANTIZERS.register("factorized_rvq")
class FactorizedResidualVectorQuantizer(ResidualQuantizer):
    """K factorized VQ stages on successive residuals, with DAC's quantizer dropout.

    Args:
        dimension (int): latent dimension D.
        n_codebooks (int): stages K.
        codebook_size (int): codewords per stage.
        codebook_dim (int): lookup dimension D_c of every stage.
        quantizer_dropout (float): fraction p of each training batch (its first
            floor(B * p) examples) whose examples use K'_b ~ U{1..K} codebooks (DAC: 0.5);
            the rest use all K.

    Raises:
        ValueError: for ``n_codebooks < 1`` or ``quantizer_dropout`` outside [0, 1].
    """

    def __init__(
        self,
        dimension: int = 1024,
        n_codebooks: int = 9,
        codebook_size: int = 1024,
        codebook_dim: int = 8,
        quantizer_dropout: float = 0.0,
    ):
        if n_codebooks < 1:
            raise ValueError(f"n_codebooks must be >= 1, got {n_codebooks}")
        # per example, drawn even when p = 0: DAC draws B numbers in every training forward
        dropout = dropout_policy(quantizer_dropout, per_example=True)
        super().__init__(n_codebooks, codebook_size, dropout=dropout)
        self.dimension = dimension
        self.quantizer_dropout = quantizer_dropout
        self.layers = nn.ModuleList(
            FactorizedVectorQuantizer(dimension, codebook_size, codebook_dim)
            for _ in range(n_codebooks)
        )

    def forward(self, z: Tensor, n_quantizers: int | None = None) -> QuantizerOutput:
        """Quantise (DAC ``ResidualVectorQuantize.forward``).

        Quantizer dropout (exact form, the CPU default): K'_b for all B examples from the
        global CPU generator, as DAC's ``torch.randint`` (its random stream), copied to
        the device; sync-free form (the CUDA default): drawn on the device, same
        distribution (:class:`~codectk.quantization.dropout.QuantizerDropout`).

        Args:
            z (Tensor): latents (B, D, F).
            n_quantizers (int | None): K' for the whole batch (only the first K' stages
                run). None: per-example quantizer dropout in training (all K stages run,
                masked per example), all K in eval.

        Returns:
            QuantizerOutput: z_q (B, D, F); codes (B, K', F) of the K' stages that ran
            (the per-example counts are in ``per_example``); the stage losses summed over
            stages (scalars); K'.

        Raises:
            ValueError: for an ``n_quantizers`` outside 1..K.
        """
        n_run, counts = self.n_for_forward(z, n_quantizers)
        if counts is None:
            counts = torch.full((z.shape[0],), n_run, dtype=torch.long, device=z.device)
        z_q, codes, (commitment, codebook) = residual_loop(self.layers, z, n_run, counts)
        zero = z.new_zeros(())
        return QuantizerOutput(
            z_q=z_q,
            codes=codes,
            commitment_loss=sum(commitment, zero),
            codebook_loss=sum(codebook, zero),
            n_quantizers=n_run,
            per_example=counts,
        )
