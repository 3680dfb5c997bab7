"""What every codec objective does with its terms: add the quantizer's losses and sum
the weighted terms into the total that is optimised, with the detached parts logged."""

from __future__ import annotations

from torch import Tensor


def add_quantizer_terms(
    terms: dict[str, Tensor],
    weights: dict[str, float],
    commitment_loss: Tensor | None,
    codebook_loss: Tensor | None,
    codebook_first: bool = False,
) -> None:
    """Add ``commit`` and ``codebook`` to ``terms`` (in place) when given and weighted.

    Args:
        terms (dict[str, Tensor]): unweighted scalar terms so far.
        weights (dict[str, float]): weight per term; a term weighted 0 is not added.
        commitment_loss (Tensor | None): scalar from the quantizer.
        codebook_loss (Tensor | None): scalar from the quantizer.
        codebook_first (bool): add ``codebook`` before ``commit`` (the order of the sum
            in AcademiCodec's objective; float addition is not associative).
    """
    pairs = [("commit", commitment_loss), ("codebook", codebook_loss)]
    for name, value in reversed(pairs) if codebook_first else pairs:
        if value is not None and weights.get(name, 0) > 0:
            terms[name] = value


def weighted_total(
    terms: dict[str, Tensor], weights: dict[str, float], like: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum ``weights[name] * term`` in the order of ``terms``.

    Args:
        terms (dict[str, Tensor]): unweighted scalar terms.
        weights (dict[str, float]): weight per term name.
        like (Tensor): gives the dtype and device of the zero the sum starts from.

    Returns:
        tuple[Tensor, dict[str, Tensor]]: the total (with graph) and the detached
        unweighted terms plus ``"total"``.

    Raises:
        KeyError: a term without a weight.
    """
    total = like.new_zeros(())
    for name, value in terms.items():
        total = total + weights[name] * value
    parts = {name: value.detach() for name, value in terms.items()}
    parts["total"] = total.detach()
    return total, parts
