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

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from codectk.quantization import QUANTIZERS
from codectk.quantization.vq import VectorQuantizer, broadcast_


def residual_encode(layers, z: Tensor, n: int) -> Tensor:
    """Residual quantisation with the first ``n`` stages (SoundStream Algorithm 1).

    Args:
        layers: stages with ``encode(residual (B, D, F)) -> (B, F)`` and ``decode``.
        z (Tensor): latent (B, D, F).
        n (int): stages to use.

    Returns:
        Tensor: codes (B, n, F).
    """
    residual, codes = z, []
    for layer in layers[:n]:
        c = layer.encode(residual)
        residual = residual - layer.decode(c)
        codes.append(c)
    return torch.stack(codes, dim=1)  # n x (B, F) -> (B, n, F)


def residual_decode(layers, codes: Tensor, n_codebooks: int) -> Tensor:
    """Sum of the stages' codewords for codes (B, K', F), 1 <= K' <= ``n_codebooks``.

    Returns:
        Tensor: z_q (B, D, F).

    Raises:
        ValueError: for a codes tensor that is not (B, K', F) with 1 <= K' <= K.
    """
    if codes.dim() != 3 or not 1 <= codes.shape[1] <= n_codebooks:
        raise ValueError(
            f"codes must be (B, K', F) with 1 <= K' <= {n_codebooks}, got {tuple(codes.shape)}"
        )
    z_q = layers[0].decode(codes[:, 0])
    for i in range(1, codes.shape[1]):
        z_q = z_q + layers[i].decode(codes[:, i])
    return z_q


@dataclass
class QuantizerOutput:
    """What a quantizer's ``forward`` returns.

    Attributes:
        z_q (Tensor): quantised latents (B, D, F), straight-through gradient to z.
        codes (Tensor): LongTensor (B, K', F).
        commitment_loss (Tensor): scalar, mean over the K' stages of ||r_i - sg(q_i)||^2
            (VQ-VAE eq. 3, third term, without its weight beta).
        codebook_loss (Tensor): scalar, 0 for EMA codebooks (they are not trained by
            gradient).
        n_quantizers (int): K', the codebooks used.
    """

    z_q: Tensor
    codes: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    n_quantizers: int


@QUANTIZERS.register("rvq")
class ResidualVectorQuantizer(nn.Module):
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
            probability 1; one K' per batch keeps codes rectangular). Under
            ``torch.distributed`` rank 0's draw is broadcast.
        ema_init (str), dead_code (str), random_init (str): codebook options, see
            :class:`~codectk.quantization.vq.EuclideanCodebook`.
        detach_residual (bool): subtract each stage's detached output (see module doc).

    Raises:
        ValueError: for ``n_codebooks < 1``, ``quantizer_dropout`` outside [0, 1] or a bad
            codebook option.
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
    ):
        super().__init__()
        if n_codebooks < 1:
            raise ValueError(f"n_codebooks must be >= 1, got {n_codebooks}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout {quantizer_dropout} must lie in [0, 1]")
        self.dimension = dimension
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
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

    def check_n_quantizers(self, n_quantizers: int | None) -> int:
        """Resolve ``n_quantizers`` (None: all K).

        Raises:
            ValueError: unless 1 <= n_quantizers <= K.
        """
        if n_quantizers is None:
            return self.n_codebooks
        if not 1 <= n_quantizers <= self.n_codebooks:
            raise ValueError(
                f"n_quantizers {n_quantizers} not supported; choose 1 to {self.n_codebooks}"
            )
        return int(n_quantizers)

    def sample_n_quantizers(self, device: torch.device) -> int:
        """Quantizer dropout: K' ~ U{1..K} with probability ``quantizer_dropout``, else K."""
        n = torch.tensor(self.n_codebooks, device=device)
        if torch.rand(()) < self.quantizer_dropout:
            n.fill_(int(torch.randint(1, self.n_codebooks + 1, ())))
        return int(broadcast_(n))

    def forward(self, z: Tensor, n_quantizers: int | None = None) -> QuantizerOutput:
        """Quantise, updating the codebooks in training mode (Algorithm 1).

        Args:
            z (Tensor): latents (B, D, F).
            n_quantizers (int | None): K' (None: sampled by quantizer dropout in training,
                all K in eval).

        Returns:
            QuantizerOutput: z_q (B, D, F), codes (B, K', F), losses and K'.

        Raises:
            ValueError: for an ``n_quantizers`` outside 1..K.
        """
        if n_quantizers is None and self.training and self.quantizer_dropout > 0:
            n = self.sample_n_quantizers(z.device)
        else:
            n = self.check_n_quantizers(n_quantizers)
        residual = z
        z_q = torch.zeros_like(z)
        codes, losses = [], []
        for layer in self.layers[:n]:
            q, c, loss = layer(residual)
            if self.detach_residual:
                q = q.detach()
            residual = residual - q
            z_q = z_q + q
            codes.append(c)
            losses.append(loss)
        if self.detach_residual and self.training:
            z_q = z + (z_q - z).detach()  # straight-through for the sum of the stages
        return QuantizerOutput(
            z_q=z_q,
            codes=torch.stack(codes, dim=1),  # K' x (B, F) -> (B, K', F)
            commitment_loss=torch.stack(losses).mean(),
            codebook_loss=z.new_zeros(()),
            n_quantizers=n,
        )

    def encode(self, z: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Codes of latents without touching the codebooks.

        Args:
            z (Tensor): (B, D, F).
            n_quantizers (int | None): K' (None: all K).

        Returns:
            Tensor: LongTensor (B, K', F).

        Raises:
            ValueError: for an ``n_quantizers`` outside 1..K.
        """
        return residual_encode(self.layers, z, self.check_n_quantizers(n_quantizers))

    def decode(self, codes: Tensor) -> Tensor:
        """Sum of the K' codebook vectors.

        Args:
            codes (Tensor): integer (B, K', F), K' <= K.

        Returns:
            Tensor: z_q (B, D, F).

        Raises:
            ValueError: for a codes tensor that is not (B, K', F) with 1 <= K' <= K.
        """
        return residual_decode(self.layers, codes, self.n_codebooks)
