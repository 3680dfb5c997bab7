"""Codebook usage statistics of decoded discrete codes.

For each codebook k, with ``p_k(i)`` the relative frequency of code i over all frames
of all utterances:

* entropy ``H_k = -sum_{i: p_k(i) > 0} p_k(i) log2 p_k(i)`` in bits (Shannon 1948),
  the average code length an ideal entropy coder would need per frame;
* utilisation ``H_k / log2(codebook_size)`` in [0, 1] (1: all codes equally likely);
* fraction used: share of the ``codebook_size`` entries that occur at least once.

``sum_k H_k * frame_rate / 1000`` is the entropy-coded bitrate bound in kbps, to be
compared with the nominal ``K * log2(codebook_size) * frame_rate / 1000``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CodebookUsage:
    """Usage statistics for K codebooks of ``codebook_size`` entries each.

    Attributes:
        counts (np.ndarray): code histogram, shape (K, codebook_size), int64.
        entropy_bits (np.ndarray): entropy per codebook in bits, shape (K,).
        utilisation (np.ndarray): ``entropy_bits / log2(codebook_size)``, shape (K,).
        fraction_used (np.ndarray): share of entries seen at least once, shape (K,).
        n_frames (int): frames counted (per codebook).
    """

    counts: np.ndarray
    entropy_bits: np.ndarray
    utilisation: np.ndarray
    fraction_used: np.ndarray
    n_frames: int

    @property
    def n_codebooks(self) -> int:
        """Number of codebooks K."""
        return int(self.counts.shape[0])

    @property
    def codebook_size(self) -> int:
        """Entries per codebook."""
        return int(self.counts.shape[1])

    def entropy_bitrate_kbps(self, frame_rate: float) -> float:
        """Entropy-coded bitrate bound ``sum_k H_k * frame_rate / 1000`` in kbps.

        Args:
            frame_rate (float): code frames per second (Hz).
        """
        return float(self.entropy_bits.sum()) * frame_rate / 1000.0

    def per_stream(self, codebooks_per_stream: int) -> list[dict]:
        """Bitrate utilisation per stream of ``codebooks_per_stream`` consecutive codebooks
        (ESC, Gu and Diao 2024, §4.3): the stream's summed entropy over its maximum,
        ``sum_k H_k / (G log2(codebook_size))``.

        Returns:
            list[dict]: ``[{"stream", "codebooks", "entropy_bits", "utilisation"}, ...]``,
            streams numbered from 1.

        Raises:
            ValueError: K is not a multiple of ``codebooks_per_stream``.
        """
        g = codebooks_per_stream
        if g < 1 or self.n_codebooks % g:
            raise ValueError(
                f"{self.n_codebooks} codebooks do not split into streams of {g} codebooks"
            )
        rows = []
        for s in range(self.n_codebooks // g):
            h = float(self.entropy_bits[s * g : (s + 1) * g].sum())
            rows.append(
                {
                    "stream": s + 1,
                    "codebooks": list(range(s * g, (s + 1) * g)),
                    "entropy_bits": h,
                    "utilisation": h / (g * math.log2(self.codebook_size)),
                }
            )
        return rows

    def to_dict(self) -> dict:
        """JSON-ready summary (no histogram): per codebook and mean values.

        Returns:
            dict: ``{"n_codebooks", "codebook_size", "n_frames", "per_codebook":
            [{"codebook", "entropy_bits", "utilisation", "fraction_used"}, ...],
            "mean_over_codebooks": {"entropy_bits", "utilisation", "fraction_used"}}``.
        """
        per = [
            {
                "codebook": k,
                "entropy_bits": float(self.entropy_bits[k]),
                "utilisation": float(self.utilisation[k]),
                "fraction_used": float(self.fraction_used[k]),
            }
            for k in range(self.n_codebooks)
        ]
        return {
            "n_codebooks": self.n_codebooks,
            "codebook_size": self.codebook_size,
            "n_frames": self.n_frames,
            "per_codebook": per,
            "mean_over_codebooks": {
                "entropy_bits": float(self.entropy_bits.mean()),
                "utilisation": float(self.utilisation.mean()),
                "fraction_used": float(self.fraction_used.mean()),
            },
        }


def codebook_usage(codes_iter: Iterable[np.ndarray], codebook_size: int) -> CodebookUsage:
    """Histogram, entropy and utilisation of each codebook over a set of utterances.

    Args:
        codes_iter: integer code arrays, one per utterance, each of shape (K, F) with
            the same K (e.g. the values of :func:`codectk.io.codes.read_codes`).
        codebook_size (int): entries per codebook (>= 2).

    Returns:
        CodebookUsage: counts (K, codebook_size), entropy in bits, utilisation and
        fraction used per codebook; ``.to_dict()["mean_over_codebooks"]`` holds the
        means over K.

    Raises:
        ValueError: ``codebook_size < 2``, no utterance or no frame at all, an array
            that is not 2-D or not integer, different K across utterances, or a code
            outside ``[0, codebook_size)``.
    """
    if codebook_size < 2:
        raise ValueError(f"codebook_size {codebook_size} must be >= 2")
    counts: np.ndarray | None = None
    for i, codes in enumerate(codes_iter):
        codes = np.asarray(codes)
        if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(
                f"codes #{i} must be an integer array (K, F), got {codes.dtype} {codes.shape}"
            )
        k = codes.shape[0]
        if counts is None:
            counts = np.zeros((k, codebook_size), dtype=np.int64)
        elif k != counts.shape[0]:
            raise ValueError(f"codes #{i} has K={k} codebooks, earlier ones K={counts.shape[0]}")
        if codes.size == 0:
            continue
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= codebook_size:
            raise ValueError(f"codes #{i} has values in [{lo}, {hi}], outside [0, {codebook_size})")
        flat = (codes + np.arange(k)[:, None] * codebook_size).reshape(-1)  # (K * F,)
        counts += np.bincount(flat, minlength=k * codebook_size).reshape(k, codebook_size)
    if counts is None:
        raise ValueError("no codes: the iterable was empty")
    n_frames = int(counts[0].sum()) if counts.shape[0] else 0
    if n_frames == 0:
        raise ValueError("no frames: every code array was empty")
    p = counts / n_frames  # (K, codebook_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(counts > 0, p * np.log2(p), 0.0)
    entropy = np.maximum(-plogp.sum(axis=1), 0.0)  # (K,), clamp -0.0 / rounding
    return CodebookUsage(
        counts=counts,
        entropy_bits=entropy,
        utilisation=entropy / math.log2(codebook_size),
        fraction_used=(counts > 0).sum(axis=1) / codebook_size,
        n_frames=n_frames,
    )
