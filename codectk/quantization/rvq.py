"""Residual vector quantiser with quantizer dropout (SoundStream).

Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", IEEE/ACM TASLP 2021
(arXiv 2107.03312): §III-C, Algorithm 1 (residual vector quantisation) and "Enabling
bitrate scalability with quantizer dropout".

Algorithm 1: y_hat = 0; residual = z; for i = 1..K': y_hat += Q_i(residual);
residual -= Q_i(residual). Each Q_i is an EMA :class:`~codectk.quantization.vq.VectorQuantizer`.
Each stage uses the straight-through estimator and the residual is formed from the
straight-through output (as the encodec 0.1.1 package, AudioDec and DAC do): the residual
has no gradient w.r.t. z past the first stage, so only the first stage's commitment loss
reaches the encoder, and the gradient of z_q w.r.t. z is the identity when no projection
is used. With ``detach_residual`` (AudioCraft, the authors' training code for EnCodec,
``audiocraft/quantization/core_vq.py:372-382``) each stage's output is detached before it
is subtracted, so every stage's commitment loss reaches the encoder, and the sum gets one
straight-through estimator at the end in training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codectk.quantization import QUANTIZERS
from codectk.quantization.base import (
    QuantizerOutput,
    ResidualQuantizer,
    residual_decode,
    residual_encode,
    residual_loop,
)
from codectk.quantization.dropout import QuantizerDropout, dropout_policy
from codectk.quantization.vq import VectorQuantizer

__all__ = ["QuantizerOutput", "ResidualVectorQuantizer", "residual_decode", "residual_encode"]


@QUANTIZERS.register("rvq")
class ResidualVectorQuantizer(ResidualQuantizer):
    """K stages of EMA vector quantisation applied to successive residuals.

    Args:
        dimension (int): latent dimension D.
        n_codebooks (int): stages K.
        codebook_size (int): codewords per stage.
        codebook_dim (int | None): codeword size (None: D, no projection).
        decay (float): EMA decay of the codebooks.
        epsilon (float): Laplace smoothing constant.
        kmeans_init (bool): k-means initialisation on the first training batch.
        kmeans_iters (int): k-means iterations.
        threshold_ema_dead_code (float): dead-code threshold (0: never replace).
        quantizer_dropout (float): in training with ``n_quantizers=None``, probability of
            drawing K' uniformly from 1..K for the batch (SoundStream draws per example with
            probability 1; one K' per batch keeps codes rectangular), a
            :class:`~codectk.quantization.dropout.QuantizerDropout` with this probability.
        ema_init (str), dead_code (str), random_init (str): codebook options, see
            :class:`~codectk.quantization.vq.EuclideanCodebook`.
        detach_residual (bool): subtract each stage's detached output (see module doc).
        dropout (QuantizerDropout | None): a dropout policy instead of
            ``quantizer_dropout`` (EnCodec's target bandwidths, FunCodec's choices, or
            per-example dropout through DAC's masked loop).

    Raises:
        ValueError: for ``n_codebooks < 1``, ``quantizer_dropout`` outside [0, 1], both
            ``quantizer_dropout`` and ``dropout``, or a bad codebook option.
    """

    def __init__(
        self,
        dimension: int = 128,
        n_codebooks: int = 8,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2.0,
        quantizer_dropout: float = 0.0,
        ema_init: str = "weighted",
        dead_code: str = "reset",
        random_init: str = "kaiming_uniform",
        detach_residual: bool = False,
        dropout: QuantizerDropout | None = None,
    ):
        if n_codebooks < 1:
            raise ValueError(f"n_codebooks must be >= 1, got {n_codebooks}")
        dropout = dropout_policy(quantizer_dropout, dropout)
        super().__init__(n_codebooks, codebook_size, dropout=dropout)
        self.dimension = dimension
        self.quantizer_dropout = quantizer_dropout
        self.detach_residual = detach_residual
        self.layers = nn.ModuleList(
            VectorQuantizer(
                dimension,
                codebook_size,
                codebook_dim,
                decay,
                epsilon,
                kmeans_init,
                kmeans_iters,
                threshold_ema_dead_code,
                ema_init,
                dead_code,
                random_init,
            )
            for _ in range(n_codebooks)
        )

    def forward(self, z: Tensor, n_quantizers: int | None = None) -> QuantizerOutput:
        """Quantise, updating the codebooks in training mode (Algorithm 1).

        Args:
            z (Tensor): latents (B, D, F).
            n_quantizers (int | None): K' (None: drawn by the dropout policy in training,
                all K in eval).

        Returns:
            QuantizerOutput: z_q (B, D, F), codes (B, K', F), the commitment loss averaged
            over the K' stages (with per-example dropout, each stage's masked batch mean),
            K' and the per-example counts (per-example dropout only).

        Raises:
            ValueError: for an ``n_quantizers`` outside 1..K.
        """
        n, counts = self.n_for_forward(z, n_quantizers)
        z_q, codes, (commitment,) = residual_loop(
            self.layers, z, n, counts, detach_residual=self.detach_residual
        )
        if self.detach_residual and self.training:
            z_q = z + (z_q - z).detach()  # straight-through for the sum of the stages
        return QuantizerOutput(
            z_q=z_q,
            codes=codes,
            commitment_loss=torch.stack(commitment).mean(),
            codebook_loss=z.new_zeros(()),
            n_quantizers=n,
            per_example=counts,
        )
