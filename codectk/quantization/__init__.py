"""Quantizers, registered by name in :data:`QUANTIZERS` (``quantizer: rvq``); codecs build
theirs through it. The contract they share (ladder of codebook counts, dropout policy,
float32 island, sync-free switch) is :mod:`codectk.quantization.base`."""

from codectk.registry import Registry

QUANTIZERS = Registry("quantizer")

from codectk.quantization.base import (  # noqa: E402
    Quantizer,
    QuantizerOutput,
    QuantizerPart,
    is_float32_island,
    seed_dropout_,
    set_sync_free,
)
from codectk.quantization.csrvq import CrossScaleRVQ  # noqa: E402
from codectk.quantization.dropout import QuantizerDropout  # noqa: E402
from codectk.quantization.factorized_vq import (  # noqa: E402
    FactorizedResidualVectorQuantizer,
    FactorizedVectorQuantizer,
)
from codectk.quantization.fsq import FiniteScalarQuantizer  # noqa: E402
from codectk.quantization.grvq import GroupResidualVectorQuantizer  # noqa: E402
from codectk.quantization.rvq import ResidualVectorQuantizer  # noqa: E402
from codectk.quantization.vq import EuclideanCodebook, VectorQuantizer  # noqa: E402

__all__ = [
    "QUANTIZERS",
    "CrossScaleRVQ",
    "EuclideanCodebook",
    "FactorizedResidualVectorQuantizer",
    "FactorizedVectorQuantizer",
    "FiniteScalarQuantizer",
    "GroupResidualVectorQuantizer",
    "Quantizer",
    "QuantizerDropout",
    "QuantizerOutput",
    "QuantizerPart",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
    "is_float32_island",
    "seed_dropout_",
    "set_sync_free",
]
