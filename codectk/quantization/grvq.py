"""Group-residual vector quantiser (GRVQ) of HiFi-Codec.

Yang, Liu, Huang, Tian, Weng, Zou, "HiFi-Codec: Group-residual Vector quantization for
High Fidelity Audio Codec", arXiv 2305.02765, 2023 (the GRVQ method; the exact layout is
AcademiCodec's ``Quantizer`` in ``academicodec/models/hificodec/models.py``): the latent
z (B, D, F) is split along its channels into G groups z_g (B, D / G, F); each group is
quantised by its own residual VQ with N_q stages (SoundStream Algorithm 1),

    ẑ_g = sum_{l=1..N_q} Q_{g,l}(r_{g,l}),   r_{g,1} = z_g,  r_{g,l+1} = r_{g,l} - Q_{g,l}(r_{g,l}),

and ẑ = concat_g ẑ_g. With G = 2 groups and N_q = 2 stages HiFi-Codec has K = 4 codebooks
(AcademiCodec's ``n_code_groups`` = 2 with its fixed ``residul_layer`` = 2).

Code layout (as AcademiCodec's ``Quantizer``): stage-major, codebook index
``k = l * G + g`` for stage l and group g, so ``codes[:, :G]`` are the first stage of every
group and keeping the first ``K' = n * G`` codebooks keeps the first n stages of every group.
``n_quantizers`` must therefore be a multiple of G.

Codebooks (``codebook_update``):

* "ema": each group is a :class:`~codectk.quantization.rvq.ResidualVectorQuantizer`, so
  every codebook is trained by EMA with k-means initialisation and dead-code replacement,
  and is synchronised across ``torch.distributed`` ranks exactly as RVQ's are;
* "gradient": AcademiCodec's ``Quantizer_module`` codebooks (``models.py:430-442``), an
  ``nn.Embedding`` of V x D / G initialised uniform in [-1/V, 1/V] and learned by gradient
  through the codebook loss (VQ-VAE eq. 3, second term) ||sg(r) - q||^2; the commitment
  loss ||r - sg(q)||^2 is returned beside it (AcademiCodec weights them 1 and 0.25,
  ``models.py:476-477``, times 10 in ``train.py:287``). Both are means over the group's
  elements, averaged over stages and groups (= AcademiCodec's means over all D channels,
  averaged over its stages, ``models.py:506-507``). These codebooks are parameters, so
  DDP averages their gradients.

Quantizer dropout draws the number of stages n ~ U{1..N_q} once per batch and applies it to
every group: K' = n G is drawn on the ladder G, 2G, ..., K
(:class:`~codectk.quantization.dropout.QuantizerDropout`); per-example dropout runs every
stage with DAC's masks (:func:`~codectk.quantization.base.residual_loop`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.quantization import QUANTIZERS
from codectk.quantization.base import (
    Quantizer,
    QuantizerOutput,
    QuantizerPart,
    residual_decode,
    residual_encode,
    residual_loop,
)
from codectk.quantization.dropout import QuantizerDropout, dropout_policy
from codectk.quantization.rvq import ResidualVectorQuantizer
from codectk.quantization.vq import nearest_codes

CODEBOOK_UPDATES = ("ema", "gradient")
_EMA_DEFAULTS = dict(
    decay=0.99, epsilon=1e-5, kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2.0
)


class LearnedCodebookVQ(QuantizerPart):
    """One VQ stage whose codebook is learned by gradient (VQ-VAE, van den Oord et al. 2017).

    Nearest codeword by squared Euclidean distance (eq. 1); the straight-through output
    (eq. 3's gradient path); the codebook and commitment losses of eq. 3, unweighted.

    Args:
        dim (int): vector size D.
        codebook_size (int): codewords V, initialised uniform in [-1/V, 1/V]
            (AcademiCodec's ``Quantizer_module``).
    """

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.embedding = nn.Embedding(codebook_size, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def forward(
        self, r: Tensor, per_example: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Quantise residuals.

        Args:
            r (Tensor): (B, D, F).
            per_example (bool): the losses per example (B,) instead of scalars.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: straight-through z_q (B, D, F) (value:
            the codewords; gradient w.r.t. r: identity), codes LongTensor (B, F), the
            commitment loss mean (r - sg(q))^2 and the codebook loss mean (sg(r) - q)^2
            (over all elements, or each example's).
        """
        x = r.transpose(1, 2)  # (B, D, F) -> (B, F, D)
        codes = self.encode(r)
        q = self.embedding(codes)  # (B, F, D)
        if per_example:
            commitment = (x - q.detach()).pow(2).mean(dim=(1, 2))  # (B,)
            codebook = (q - x.detach()).pow(2).mean(dim=(1, 2))  # (B,)
        else:
            commitment = F.mse_loss(x, q.detach())
            codebook = F.mse_loss(q, x.detach())
        q = x + (q - x).detach()
        return q.transpose(1, 2), codes, commitment, codebook  # (B, F, D) -> (B, D, F)

    def encode(self, r: Tensor) -> Tensor:
        """Codes (B, F) of residuals (B, D, F)."""
        x = r.transpose(1, 2)  # (B, D, F) -> (B, F, D)
        flat = x.detach().reshape(-1, x.shape[-1])  # (B * F, D)
        return nearest_codes(flat, self.embedding.weight.detach()).view(x.shape[:-1])

    def decode(self, codes: Tensor) -> Tensor:
        """Codewords (B, D, F) of codes (B, F)."""
        return self.embedding(codes.long()).transpose(1, 2)  # (B, F, D) -> (B, D, F)


class LearnedResidualVQ(nn.Module):
    """The :class:`LearnedCodebookVQ` stages of one group (SoundStream Algorithm 1, run by
    :func:`~codectk.quantization.base.residual_loop`).

    Args:
        dimension (int): latent dimension D.
        n_codebooks (int): stages K.
        codebook_size (int): codewords per stage.
    """

    def __init__(self, dimension: int, n_codebooks: int, codebook_size: int):
        super().__init__()
        self.n_codebooks = n_codebooks
        self.layers = nn.ModuleList(
            LearnedCodebookVQ(dimension, codebook_size) for _ in range(n_codebooks)
        )


@QUANTIZERS.register("grvq")
class GroupResidualVectorQuantizer(Quantizer):
    """G independent residual VQs over G channel groups of the latent.

    Args:
        dimension (int): latent dimension D (divisible by ``n_groups``).
        n_groups (int): groups G.
        n_codebooks_per_group (int): RVQ stages N_q per group; K = G * N_q codebooks.
        codebook_size (int): codewords per codebook.
        codebook_dim (int | None): codeword size inside each group (None: D / G, no
            projection; "ema" only).
        decay (float | None): EMA decay of the codebooks ("ema" only; None: 0.99).
        epsilon (float | None): Laplace smoothing constant ("ema" only; None: 1e-5).
        kmeans_init (bool | None): k-means initialisation on the first training batch
            ("ema" only; None: True).
        kmeans_iters (int | None): k-means iterations ("ema" only; None: 10).
        threshold_ema_dead_code (float | None): dead-code threshold, 0: never replace
            ("ema" only; None: 2).
        quantizer_dropout (float): in training with ``n_quantizers=None``, probability of
            drawing the stages n ~ U{1..N_q} (all groups alike) instead of using all.
        codebook_update (str): "ema" or "gradient" (see the module doc).
        dropout (QuantizerDropout | None): a dropout policy over K' = G, 2G, ..., K instead
            of ``quantizer_dropout`` (e.g. per example).

    Raises:
        ValueError: for a D not divisible by G, fewer than one group or stage, a
            ``quantizer_dropout`` outside [0, 1], an unknown ``codebook_update``, or an
            EMA option given with ``codebook_update: gradient``, or both
            ``quantizer_dropout`` and ``dropout``.
    """

    step_name = "stage"

    def __init__(
        self,
        dimension: int = 512,
        n_groups: int = 2,
        n_codebooks_per_group: int = 2,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        decay: float | None = None,
        epsilon: float | None = None,
        kmeans_init: bool | None = None,
        kmeans_iters: int | None = None,
        threshold_ema_dead_code: float | None = None,
        quantizer_dropout: float = 0.0,
        codebook_update: str = "ema",
        dropout: QuantizerDropout | None = None,
    ):
        check_choice("codebook_update", codebook_update, CODEBOOK_UPDATES)
        ema = dict(
            decay=decay,
            epsilon=epsilon,
            kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters,
            threshold_ema_dead_code=threshold_ema_dead_code,
        )
        if codebook_update == "gradient":
            given = sorted(
                k for k, v in {**ema, "codebook_dim": codebook_dim}.items() if v is not None
            )
            if given:
                raise ValueError(f"{given} apply to codebook_update 'ema' only, not 'gradient'")
        ema = {k: _EMA_DEFAULTS[k] if v is None else v for k, v in ema.items()}
        if n_groups < 1 or n_codebooks_per_group < 1:
            raise ValueError(
                f"n_groups {n_groups} and n_codebooks_per_group {n_codebooks_per_group} "
                "must be >= 1"
            )
        if dimension % n_groups:
            raise ValueError(f"dimension {dimension} is not divisible by n_groups {n_groups}")
        dropout = dropout_policy(quantizer_dropout, dropout)
        super().__init__(n_groups * n_codebooks_per_group, codebook_size, n_groups, dropout)
        self.dimension = dimension
        self.n_groups = n_groups
        self.n_codebooks_per_group = n_codebooks_per_group
        self.quantizer_dropout = quantizer_dropout
        self.codebook_update = codebook_update
        self.groups = nn.ModuleList(
            LearnedResidualVQ(dimension // n_groups, n_codebooks_per_group, codebook_size)
            if codebook_update == "gradient"
            else ResidualVectorQuantizer(
                dimension=dimension // n_groups,
                n_codebooks=n_codebooks_per_group,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                quantizer_dropout=0.0,  # dropout is drawn here, once for all groups
                **ema,
            )
            for _ in range(n_groups)
        )

    def _split(self, z: Tensor) -> tuple[Tensor, ...]:
        if z.dim() != 3 or z.shape[1] != self.dimension:
            raise ValueError(f"z must be (B, {self.dimension}, F), got {tuple(z.shape)}")
        return z.chunk(self.n_groups, dim=1)  # G x (B, D / G, F)

    def _interleave(self, group_codes: list[Tensor]) -> Tensor:
        """G x (B, n, F) group codes -> (B, n * G, F) in stage-major order (k = l * G + g)."""
        codes = torch.stack(group_codes, dim=2)  # (B, n, G, F)
        return codes.flatten(1, 2)  # (B, n, G, F) -> (B, n * G, F)

    def forward(self, z: Tensor, n_quantizers: int | None = None) -> QuantizerOutput:
        """Quantise every group, updating the codebooks in training mode.

        Args:
            z (Tensor): latents (B, D, F).
            n_quantizers (int | None): K' = n * G (None: sampled by quantizer dropout in
                training, all K in eval).

        Returns:
            QuantizerOutput: z_q (B, D, F), codes (B, K', F) stage-major, the commitment
            and codebook losses averaged over groups (each averaged over its stages; the
            codebook loss is 0 for EMA codebooks), K'.

        Raises:
            ValueError: for a bad ``z`` shape or ``n_quantizers``.
        """
        parts = self._split(z)
        k, counts = self.n_for_forward(z, n_quantizers)
        n = k // self.n_groups  # stages per group
        stages = None if counts is None else counts // self.n_groups  # (B,)
        z_q, codes, commit, codebook = [], [], [], []
        for group, part in zip(self.groups, parts):
            q, c, terms = residual_loop(group.layers, part, n, stages)
            z_q.append(q)
            codes.append(c)
            commit.append(torch.stack(terms[0]).mean())  # over the group's stages
            codebook.append(torch.stack(terms[1]).mean() if len(terms) > 1 else z.new_zeros(()))
        return QuantizerOutput(
            z_q=torch.cat(z_q, dim=1),  # G x (B, D / G, F) -> (B, D, F)
            codes=self._interleave(codes),
            commitment_loss=torch.stack(commit).mean(),
            codebook_loss=torch.stack(codebook).mean(),
            n_quantizers=k,
            per_example=counts,
        )

    def encode(self, z: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Codes of latents without touching the codebooks.

        Args:
            z (Tensor): (B, D, F).
            n_quantizers (int | None): K' = n * G (None: all K).

        Returns:
            Tensor: LongTensor (B, K', F), stage-major (k = l * G + g).

        Raises:
            ValueError: for a bad ``z`` shape or ``n_quantizers``.
        """
        parts = self._split(z)
        n = self.check_n_quantizers(n_quantizers) // self.n_groups
        return self._interleave(
            [residual_encode(g.layers, part, n) for g, part in zip(self.groups, parts)]
        )

    def decode(self, codes: Tensor) -> Tensor:
        """Quantised latents of stage-major codes.

        Args:
            codes (Tensor): integer (B, K', F), K' one of :attr:`valid_n_quantizers`.

        Returns:
            Tensor: z_q (B, D, F).

        Raises:
            ValueError: for codes that are not (B, K', F) with a valid K'.
        """
        if codes.dim() != 3:
            raise ValueError(f"codes must be (B, K', F), got {tuple(codes.shape)}")
        n = self.check_n_quantizers(codes.shape[1]) // self.n_groups
        b, _, f = codes.shape
        per_group = codes.reshape(b, n, self.n_groups, f)  # (B, n * G, F) -> (B, n, G, F)
        z_q = [
            residual_decode(group.layers, per_group[:, :, g], self.n_codebooks_per_group)
            for g, group in enumerate(self.groups)
        ]
        return torch.cat(z_q, dim=1)  # G x (B, D / G, F) -> (B, D, F)
