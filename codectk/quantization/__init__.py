"""Quantizers, registered by name in :data:`QUANTIZERS` (``quantizer: rvq``)."""

from codectk.registry import Registry

QUANTIZERS = Registry("quantizer")

from codectk.quantization.factorized_vq import (  # noqa: E402
    FactorizedResidualVectorQuantizer,
    FactorizedVectorQuantizer,
)
from codectk.quantization.fsq import FiniteScalarQuantizer  # noqa: E402
from codectk.quantization.grvq import GroupResidualVectorQuantizer  # noqa: E402
from codectk.quantization.rvq import QuantizerOutput, ResidualVectorQuantizer  # noqa: E402
from codectk.quantization.vq import EuclideanCodebook, VectorQuantizer  # noqa: E402

__all__ = [
    "QUANTIZERS",
    "EuclideanCodebook",
    "FactorizedResidualVectorQuantizer",
    "FactorizedVectorQuantizer",
    "FiniteScalarQuantizer",
    "GroupResidualVectorQuantizer",
    "QuantizerOutput",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
]
