"""Vector quantisation with an exponential-moving-average (EMA) codebook.

* Nearest-neighbour quantisation and the straight-through estimator: van den Oord et al.,
  "Neural Discrete Representation Learning" (VQ-VAE), NeurIPS 2017, eq. (1)-(3).
* Codebook learned by EMA of cluster sizes and sums instead of a codebook loss:
  VQ-VAE Appendix A.1, eq. (6)-(8), with Laplace smoothing of the cluster sizes
  (Razavi et al., VQ-VAE-2, 2019; as in Sonnet and EnCodec).
* k-means initialisation on the first training batch and replacement of codewords that
  stay unused ("dead codes") by random frames of the current batch: SoundStream
  (Zeghidour et al., TASLP 2021, §III-C).

Three options reproduce the authors' codebooks where they differ from codectk's defaults
(all derived from lucidrains' vector-quantize-pytorch): ``ema_init="unweighted"`` starts
the EMA from embed_avg = the codewords and cluster sizes = the k-means counts (zeros
without k-means), as EnCodec/AudioCraft (``audiocraft/quantization/core_vq.py:115-138``)
and AudioDec (``layers/vq_module.py:40-43``); ``dead_code="before_ema"`` is
AudioCraft's order (``core_vq.py:142-158, 205-217``); ``random_init="normal"`` is
AudioDec's codebook draw. ``test/parity/test_encodec_quantizer.py`` and
``test/parity/test_audiodec_quantizer.py`` compare them with the authors' code.

Distributed data parallel: when ``torch.distributed`` is initialised, the per-batch
cluster counts and embedding sums are all-reduced (summed) before the EMA update, and the
k-means initialisation and the replacement vectors are broadcast from rank 0, so every
rank holds the same codebook after every step. Every rank must therefore run the same
number of training forwards through each codebook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.quantization.base import HostFlag, QuantizerPart
from codectk.quantization.distributed import all_reduce_sum_, broadcast_

__all__ = [
    "EuclideanCodebook",
    "VectorQuantizer",
    "all_reduce_sum_",
    "broadcast_",
    "kmeans",
    "nearest_codes",
    "sample_vectors",
]


def sample_vectors(samples: Tensor, num: int) -> Tensor:
    """Draw ``num`` rows of ``samples`` (without replacement when there are enough).

    Args:
        samples (Tensor): (N, D).
        num (int): rows wanted.

    Returns:
        Tensor: (num, D).
    """
    n = samples.shape[0]
    if n >= num:
        index = torch.randperm(n, device=samples.device)[:num]
    else:
        index = torch.randint(0, n, (num,), device=samples.device)
    return samples[index]


def nearest_codes(x: Tensor, embed: Tensor) -> Tensor:
    """Index of the nearest codeword (squared Euclidean distance, VQ-VAE eq. 1).

    Args:
        x (Tensor): (N, D).
        embed (Tensor): codebook (V, D).

    Returns:
        Tensor: LongTensor (N,) with values in [0, V).
    """
    dist2 = (
        x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() + embed.pow(2).sum(1)[None, :]
    )  # (N, V)
    return dist2.argmin(dim=1)


def code_counts(codes: Tensor, num: int, dtype: torch.dtype) -> Tensor:
    """How often each of ``num`` codes occurs in ``codes`` (N,): (num,) of ``dtype``.

    ``index_add_`` of ones, not ``torch.bincount``, whose CUDA kernel reads the largest
    code back to the host; the counts are exact integers either way.
    """
    ones = torch.ones(codes.shape[0], dtype=dtype, device=codes.device)
    return torch.zeros(num, dtype=dtype, device=codes.device).index_add_(0, codes, ones)


def kmeans(samples: Tensor, num_clusters: int, num_iters: int = 10) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means, initialised with random samples; empty clusters keep their centre.

    Args:
        samples (Tensor): (N, D).
        num_clusters (int): centres V.
        num_iters (int): Lloyd iterations.

    Returns:
        tuple[Tensor, Tensor]: centres (V, D) and the cluster sizes (V,) of the last
        assignment.
    """
    means = sample_vectors(samples, num_clusters)
    counts = torch.zeros(num_clusters, dtype=samples.dtype, device=samples.device)
    for _ in range(num_iters):
        codes = nearest_codes(samples, means)
        counts = code_counts(codes, num_clusters, samples.dtype)
        sums = torch.zeros_like(means).index_add_(0, codes, samples)
        new = sums / counts.clamp(min=1)[:, None]
        means = torch.where(counts[:, None] > 0, new, means)
    return means, counts


EMA_INITS = ("weighted", "unweighted")
DEAD_CODES = ("reset", "before_ema")
RANDOM_INITS = ("kaiming_uniform", "normal")


class EuclideanCodebook(QuantizerPart):
    """A codebook of ``codebook_size`` vectors of size ``dim`` trained by EMA.

    Buffers: ``embed`` (V, D) the codewords; ``embed_avg`` (V, D) and ``cluster_size`` (V,)
    their EMA sums and counts (``embed = embed_avg / smoothed(cluster_size)``);
    ``initialized`` whether the first training batch has been seen. With ``kmeans_init``
    the codebook is all zeros until then, so an untrained codebook maps everything to 0.

    EMA state at the start (``ema_init``):

    * "weighted" (codectk): consistent with the codebook, cluster sizes max(n_i, 1) (n_i
      the k-means counts; 1 without k-means) and embed_avg = codeword x cluster size;
    * "unweighted" (EnCodec/AudioCraft, AudioDec): embed_avg = the codewords and cluster
      sizes n_i, zeros without k-means, so codewords unused by the first batch jump to
      embed_avg / (smoothed count near 0) in the first update.

    Dead codes, codewords whose EMA cluster size is below ``threshold_ema_dead_code``
    (``dead_code``):

    * "reset" (codectk): checked after the EMA update; each takes a random frame of the
      batch and its EMA state restarts at (frame x threshold, threshold);
    * "before_ema" (AudioCraft's order): checked on the counts before this batch's update;
      the codebook rows take frames of ``V`` drawn from the batch (randperm, or randint
      when the batch has fewer than V frames), then the EMA update recomputes every
      codeword as embed_avg / smoothed counts, which overwrites them: the step ends with
      the codebook it would have without replacement, and the random draw is made.

    Args:
        dim (int): vector size D.
        codebook_size (int): number of codewords V.
        kmeans_init (bool): initialise with k-means on the first training batch; otherwise
            with Kaiming-uniform random vectors.
        kmeans_iters (int): k-means iterations.
        decay (float): EMA decay gamma in [0, 1) (VQ-VAE eq. 6-7).
        epsilon (float): Laplace smoothing constant of the cluster sizes.
        threshold_ema_dead_code (float): codewords whose EMA cluster size (frames per
            batch) falls below this are replaced by random frames of the batch (0: never).
        ema_init (str): "weighted" or "unweighted" (above).
        dead_code (str): "reset" or "before_ema" (above).
        random_init (str): codebook without k-means: "kaiming_uniform" (rows of a (V, D)
            Kaiming-uniform draw, as EnCodec) or "normal" (standard normal drawn as a
            (D, V) matrix and transposed, as AudioDec).

    Raises:
        ValueError: for a decay outside [0, 1), a non-positive size or an unknown
            ``ema_init``, ``dead_code`` or ``random_init``.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        threshold_ema_dead_code: float = 2.0,
        ema_init: str = "weighted",
        dead_code: str = "reset",
        random_init: str = "kaiming_uniform",
    ):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay {decay} must lie in [0, 1)")
        if dim < 1 or codebook_size < 1:
            raise ValueError(f"dim {dim} and codebook_size {codebook_size} must be positive")
        for name, value, allowed in (
            ("ema_init", ema_init, EMA_INITS),
            ("dead_code", dead_code, DEAD_CODES),
            ("random_init", random_init, RANDOM_INITS),
        ):
            check_choice(name, value, allowed)
        self.dim = dim
        self.codebook_size = codebook_size
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.decay = decay
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.ema_init, self.dead_code, self.random_init = ema_init, dead_code, random_init
        embed = torch.zeros(codebook_size, dim)
        if not kmeans_init and random_init == "kaiming_uniform":
            nn.init.kaiming_uniform_(embed)
        elif not kmeans_init:
            embed = torch.randn(dim, codebook_size).t().contiguous()  # (D, V) -> (V, D)
        # "weighted": cluster_size 1 and embed_avg = embed make embed = embed_avg / cluster_size
        start = 1.0 if ema_init == "weighted" else 0.0
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("cluster_size", torch.full((codebook_size,), start))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())
        self._initialized = HostFlag()

    def is_initialized(self) -> bool:
        """The ``initialized`` buffer, read from the device once per change of it (a load,
        a fill, a move), not once per training forward (:class:`HostFlag`)."""
        return self._initialized.read(self.initialized)

    @torch.no_grad()
    def init_embed_(self, x: Tensor) -> None:
        """Initialise from the first training batch (k-means if enabled), same on all ranks.

        Args:
            x (Tensor): (N, D) batch of vectors.
        """
        if self.kmeans_init:
            means, counts = kmeans(x.to(self.embed.dtype), self.codebook_size, self.kmeans_iters)
            self.embed.copy_(means)
            if self.ema_init == "weighted":
                counts = counts.clamp(min=1)  # an empty cluster counts as one frame
                self.embed_avg.copy_(means * counts[:, None])
            else:
                self.embed_avg.copy_(means)
            self.cluster_size.copy_(counts)
        for buf in (self.embed, self.embed_avg, self.cluster_size):
            broadcast_(buf)
        self._initialized.set(self.initialized, True)

    def encode(self, x: Tensor) -> Tensor:
        """Codes of the nearest codewords; never updates the codebook.

        Args:
            x (Tensor): (..., D).

        Returns:
            Tensor: LongTensor (...).
        """
        flat = x.reshape(-1, self.dim).to(self.embed.dtype)  # (..., D) -> (N, D)
        return nearest_codes(flat, self.embed).view(x.shape[:-1])  # (N,) -> (...)

    def decode(self, codes: Tensor) -> Tensor:
        """Codewords of ``codes``.

        Args:
            codes (Tensor): integer (...) in [0, V).

        Returns:
            Tensor: (..., D).
        """
        return F.embedding(codes.long(), self.embed)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Quantise ``x``; in training mode, then update the codebook (EMA + dead codes).

        The returned vectors come from the codebook as it was before this batch's update.

        Args:
            x (Tensor): (..., D).

        Returns:
            tuple[Tensor, Tensor]: quantised (..., D) (no gradient) and codes, LongTensor (...).
        """
        flat = x.detach().reshape(-1, self.dim).to(self.embed.dtype)  # (..., D) -> (N, D)
        if self.training and not self.is_initialized():
            self.init_embed_(flat)
        codes = nearest_codes(flat, self.embed)
        quantized = F.embedding(codes, self.embed).to(x.dtype)
        if self.training:
            self.ema_update_(flat, codes)
        return quantized.view(x.shape), codes.view(x.shape[:-1])  # (N, D), (N,) -> (..., D), (...)

    @torch.no_grad()
    def ema_update_(self, flat: Tensor, codes: Tensor) -> None:
        """One EMA step (VQ-VAE eq. 6-8) on a batch, with dead-code replacement.

        N_i <- gamma N_i + (1 - gamma) n_i;  m_i <- gamma m_i + (1 - gamma) sum_j z_ij;
        e_i = m_i / N~_i with N~_i = (N_i + eps) / (sum N + V eps) * sum N. The batch counts
        n_i and sums are all-reduced over ranks first. Dead codes are replaced after the
        update ("reset") or before it ("before_ema").

        Args:
            flat (Tensor): (N, D) batch vectors.
            codes (Tensor): (N,) their codes.
        """
        if self.dead_code == "before_ema":
            self.expire_codes_(flat)
        counts = code_counts(codes, self.codebook_size, flat.dtype)  # (V,)
        sums = torch.zeros_like(self.embed).index_add_(0, codes, flat)  # (V, D)
        all_reduce_sum_(counts)
        all_reduce_sum_(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (
            (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        )
        self.embed.copy_(self.embed_avg / smoothed[:, None])
        if self.dead_code == "reset":
            self.expire_codes_(flat)

    @torch.no_grad()
    def expire_codes_(self, flat: Tensor) -> None:
        """Replace codewords with EMA cluster size < threshold by random batch vectors.

        "reset": replaced entries restart with cluster size = threshold; "before_ema": only
        the codebook rows change (see the class doc). The decision is identical on all
        ranks (cluster sizes are synchronised); the vectors come from rank 0.

        Exact form: the dead codes are counted on the host, nothing is drawn when there
        are none, and n_dead rows are drawn (``sample_vectors``). Sync-free form
        (:meth:`~codectk.quantization.base.QuantizerPart.is_sync_free`): the same rows
        are drawn and written through masks whatever the count, so a batch without dead
        codes still draws (the device's random stream then differs from the exact
        form's); with at least V frames in the batch the codebook is the exact form's.

        Args:
            flat (Tensor): (N, D) batch vectors.
        """
        if self.threshold_ema_dead_code <= 0:
            return
        dead = self.cluster_size < self.threshold_ema_dead_code  # (V,)
        if self.is_sync_free(flat.device):
            self._expire_masked_(flat, dead)
            return
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        if self.dead_code == "before_ema":
            new = broadcast_(sample_vectors(flat, self.codebook_size).contiguous())  # (V, D)
            self.embed.copy_(torch.where(dead[:, None], new, self.embed))
            return
        new = broadcast_(sample_vectors(flat, n_dead).contiguous())  # (n_dead, D)
        self.embed[dead] = new
        self.embed_avg[dead] = new * self.threshold_ema_dead_code
        self.cluster_size[dead] = self.threshold_ema_dead_code

    def _expire_masked_(self, flat: Tensor, dead: Tensor) -> None:
        """Sync-free dead-code replacement: every codeword gets a candidate row, the dead
        ones take it (:meth:`expire_codes_`). "reset": the i-th dead code takes row
        ``randperm(N)[i]`` as the exact form does; past N dead codes (a batch of fewer
        than V frames), rows drawn with replacement."""
        dead_rows = dead[:, None]  # (V, 1)
        v, n = self.codebook_size, flat.shape[0]
        if self.dead_code == "before_ema":
            new = broadcast_(sample_vectors(flat, v).contiguous())  # (V, D)
            self.embed.copy_(torch.where(dead_rows, new, self.embed))
            return
        rank = (dead.cumsum(0) - 1).clamp(min=0)  # (V,): place of each code among the dead
        index = torch.randperm(n, device=flat.device)  # (N,)
        if n < v:  # more codes than frames: rows drawn with replacement after the first N
            index = torch.cat([index, torch.randint(0, n, (v - n,), device=flat.device)])
        new = broadcast_(flat[index[rank]].contiguous())  # (V, D)
        thr = self.threshold_ema_dead_code
        self.embed.copy_(torch.where(dead_rows, new, self.embed))
        self.embed_avg.copy_(torch.where(dead_rows, new * thr, self.embed_avg))
        self.cluster_size.masked_fill_(dead, thr)


class VectorQuantizer(QuantizerPart):
    """One EMA vector quantiser over (B, D, F) latents, with optional projections.

    When ``codebook_dim != dim``, frames are projected to ``codebook_dim`` by a linear
    layer before the lookup and back after it (as in EnCodec and DAC).

    Args:
        dim (int): latent dimension D.
        codebook_size (int): codewords V.
        codebook_dim (int | None): codeword size (None: D, no projection).
        decay (float): EMA decay.
        epsilon (float): Laplace smoothing constant.
        kmeans_init (bool): k-means initialisation on the first training batch.
        kmeans_iters (int): k-means iterations.
        threshold_ema_dead_code (float): dead-code threshold (0: never replace).
        ema_init (str), dead_code (str), random_init (str): see :class:`EuclideanCodebook`.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2.0,
        ema_init: str = "weighted",
        dead_code: str = "reset",
        random_init: str = "kaiming_uniform",
    ):
        super().__init__()
        cdim = dim if codebook_dim is None else codebook_dim
        project = cdim != dim
        self.project_in: nn.Module = nn.Linear(dim, cdim) if project else nn.Identity()
        self.project_out: nn.Module = nn.Linear(cdim, dim) if project else nn.Identity()
        self.codebook = EuclideanCodebook(
            cdim,
            codebook_size,
            kmeans_init,
            kmeans_iters,
            decay,
            epsilon,
            threshold_ema_dead_code,
            ema_init,
            dead_code,
            random_init,
        )
        self.codebook_size = codebook_size

    def forward(self, z: Tensor, per_example: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise with the straight-through estimator (VQ-VAE eq. 3).

        Args:
            z (Tensor): (B, D, F).
            per_example (bool): the commitment loss per example (B,) instead of a scalar.

        Returns:
            tuple[Tensor, Tensor, Tensor]: z_q (B, D, F) whose value is the (projected)
            codeword and whose gradient w.r.t. z passes straight through; codes, LongTensor
            (B, F); commitment loss, mean ||x - sg(q)||^2 over elements (over each
            example's with ``per_example``), with x the (projected) frames.
        """
        x = self.project_in(z.transpose(1, 2))  # (B, D, F) -> (B, F, D_c)
        q, codes = self.codebook(x)
        if per_example:
            commitment = (x - q.detach()).pow(2).mean(dim=(1, 2))  # (B,)
        else:
            commitment = F.mse_loss(x, q.detach())
        q = x + (q - x).detach()  # straight-through: forward q, backward identity
        z_q = self.project_out(q).transpose(1, 2)  # (B, F, D_c) -> (B, D, F)
        return z_q, codes, commitment

    def encode(self, z: Tensor) -> Tensor:
        """Codes (B, F) of latents (B, D, F); never updates the codebook."""
        return self.codebook.encode(self.project_in(z.transpose(1, 2)))  # (B, D, F) -> (B, F, D_c)

    def decode(self, codes: Tensor) -> Tensor:
        """Quantised latents (B, D, F) of codes (B, F)."""
        return self.project_out(self.codebook.decode(codes)).transpose(1, 2)  # -> (B, D, F)
