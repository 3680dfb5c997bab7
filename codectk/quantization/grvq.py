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

Each group is a :class:`~codectk.quantization.rvq.ResidualVectorQuantizer`, so every
codebook is trained by EMA with k-means initialisation and dead-code replacement, and is
synchronised across ``torch.distributed`` ranks exactly as RVQ's are (AcademiCodec instead
learns its codebooks by gradient with a codebook loss; see :mod:`codectk.models.hificodec`).
Quantizer dropout draws the number of stages n ~ U{1..N_q} once per batch (rank 0's draw
is broadcast) and applies it to every group.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codectk.quantization import QUANTIZERS
from codectk.quantization.rvq import QuantizerOutput, ResidualVectorQuantizer
from codectk.quantization.vq import broadcast_


@QUANTIZERS.register("grvq")
class GroupResidualVectorQuantizer(nn.Module):
    """G independent residual VQs over G channel groups of the latent.

    Args:
        dimension (int): latent dimension D (divisible by ``n_groups``).
        n_groups (int): groups G.
        n_codebooks_per_group (int): RVQ stages N_q per group; K = G * N_q codebooks.
        codebook_size (int): codewords per codebook.
        codebook_dim (int | None): codeword size inside each group (None: D / G, no
            projection).
        decay (float): EMA decay of the codebooks.
        epsilon (float): Laplace smoothing constant.
        kmeans_init (bool): k-means initialisation on the first training batch.
        kmeans_iters (int): k-means iterations.
        threshold_ema_dead_code (float): dead-code threshold (0: never replace).
        quantizer_dropout (float): in training with ``n_quantizers=None``, probability of
            drawing the stages n ~ U{1..N_q} (all groups alike) instead of using all.

    Raises:
        ValueError: for a D not divisible by G, fewer than one group or stage, or a
            ``quantizer_dropout`` outside [0, 1].
    """

    def __init__(
        self,
        dimension: int = 512,
        n_groups: int = 2,
        n_codebooks_per_group: int = 2,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2.0,
        quantizer_dropout: float = 0.0,
    ):
        super().__init__()
        if n_groups < 1 or n_codebooks_per_group < 1:
            raise ValueError(
                f"n_groups {n_groups} and n_codebooks_per_group {n_codebooks_per_group} "
                "must be >= 1"
            )
        if dimension % n_groups:
            raise ValueError(f"dimension {dimension} is not divisible by n_groups {n_groups}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout {quantizer_dropout} must lie in [0, 1]")
        self.dimension = dimension
        self.n_groups = n_groups
        self.n_codebooks_per_group = n_codebooks_per_group
        self.n_codebooks = n_groups * n_codebooks_per_group
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.groups = nn.ModuleList(
            ResidualVectorQuantizer(
                dimension=dimension // n_groups,
                n_codebooks=n_codebooks_per_group,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                decay=decay,
                epsilon=epsilon,
                kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters,
                threshold_ema_dead_code=threshold_ema_dead_code,
                quantizer_dropout=0.0,  # dropout is drawn here, once for all groups
            )
            for _ in range(n_groups)
        )

    @property
    def valid_n_quantizers(self) -> list[int]:
        """The allowed numbers of codebooks K': G, 2G, ..., K."""
        return [self.n_groups * n for n in range(1, self.n_codebooks_per_group + 1)]

    def check_n_quantizers(self, n_quantizers: int | None) -> int:
        """Stages per group for ``n_quantizers`` codebooks (None: all).

        Raises:
            ValueError: unless ``n_quantizers`` is one of :attr:`valid_n_quantizers`.
        """
        if n_quantizers is None:
            return self.n_codebooks_per_group
        if n_quantizers not in self.valid_n_quantizers:
            raise ValueError(
                f"n_quantizers {n_quantizers} not supported; choose one of "
                f"{self.valid_n_quantizers} (multiples of n_groups {self.n_groups})"
            )
        return int(n_quantizers) // self.n_groups

    def sample_n_stages(self, device: torch.device) -> int:
        """Quantizer dropout: n ~ U{1..N_q} with probability ``quantizer_dropout``, else N_q."""
        n = torch.tensor(self.n_codebooks_per_group, device=device)
        if torch.rand(()) < self.quantizer_dropout:
            n.fill_(int(torch.randint(1, self.n_codebooks_per_group + 1, ())))
        return int(broadcast_(n))

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
            loss averaged over groups (each averaged over its stages), codebook loss 0, K'.

        Raises:
            ValueError: for a bad ``z`` shape or ``n_quantizers``.
        """
        parts = self._split(z)
        if n_quantizers is None and self.training and self.quantizer_dropout > 0:
            n = self.sample_n_stages(z.device)
        else:
            n = self.check_n_quantizers(n_quantizers)
        outs = [rvq(part, n) for rvq, part in zip(self.groups, parts)]
        return QuantizerOutput(
            z_q=torch.cat([o.z_q for o in outs], dim=1),  # G x (B, D / G, F) -> (B, D, F)
            codes=self._interleave([o.codes for o in outs]),
            commitment_loss=torch.stack([o.commitment_loss for o in outs]).mean(),
            codebook_loss=z.new_zeros(()),
            n_quantizers=n * self.n_groups,
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
        n = self.check_n_quantizers(n_quantizers)
        return self._interleave([rvq.encode(part, n) for rvq, part in zip(self.groups, parts)])

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
        n = self.check_n_quantizers(codes.shape[1])
        b, _, f = codes.shape
        per_group = codes.reshape(b, n, self.n_groups, f)  # (B, n * G, F) -> (B, n, G, F)
        z_q = [rvq.decode(per_group[:, :, g]) for g, rvq in enumerate(self.groups)]
        return torch.cat(z_q, dim=1)  # G x (B, D / G, F) -> (B, D, F)
