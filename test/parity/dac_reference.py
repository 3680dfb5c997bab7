"""Shared helpers of the DAC parity tests (``test_dac_*.py``).

The reference is descript-audio-codec 1.0.0 (``dac``, installed in tools/venv-compare;
its files equal those of https://github.com/descript/descript-audio-codec at commit
c7cfc5d2647e26471dc394f95846a0830e7bec34). Weights go from the authors' modules to
codectk's through codectk's own converter (:mod:`codectk.convert.dac`), so the key
mapping is tested on the way.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codectk.convert import key_map, map_state_dict
from codectk.convert.dac import DACConverter


def assert_rel_close(actual: Tensor, expected: Tensor, tol: float, what: str) -> None:
    """max |actual - expected| <= tol * max |expected| (one scale per tensor).

    A gradient or a feature map computed in another order of float operations differs by
    a few units of the rounding of its *largest* entries, not of each entry, so the
    bound is relative to the tensor's largest magnitude; tiny entries are then held to
    the same absolute error as large ones, not to their own relative error.
    """
    assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    err = float((actual.double() - expected.double()).abs().max()) if actual.numel() else 0.0
    assert err <= tol * max(scale, 1e-30), f"{what}: max error {err:.3g}, scale {scale:.3g}"


def generator_pairs(ref: nn.Module, ours: nn.Module) -> list[tuple[str, Tensor, str, Tensor]]:
    """(ref name, ref parameter, our name, our parameter) of a DAC and a codectk ``dac``."""
    return _pairs(ref, ours, DACConverter.renames)


def discriminator_pairs(ref: nn.Module, ours: nn.Module) -> list[tuple[str, Tensor, str, Tensor]]:
    """The same for the authors' ``Discriminator`` and codectk's ``dac`` discriminator."""
    return _pairs(ref, ours, DACConverter.discriminator_renames(ours))


def _pairs(ref, ours, renames):
    names = dict(ref.named_parameters())
    mapping = key_map(list(names), ours, renames)
    mine = dict(ours.named_parameters())
    assert set(mapping) == set(names), f"unmapped: {sorted(set(names) - set(mapping))[:5]}"
    assert sorted(mapping.values()) == sorted(mine), "codectk parameters left without a source"
    return [(k, names[k], mapping[k], mine[mapping[k]]) for k in names]


def copy_generator(ref: nn.Module, ours: nn.Module) -> None:
    """Load a ``dac.model.DAC``'s weights into a codectk ``dac`` codec (the converter)."""
    ours.load_state_dict(map_state_dict(ref.state_dict(), ours, DACConverter.renames))


def copy_discriminator(ref: nn.Module, ours: nn.Module) -> None:
    """Load a ``dac.model.Discriminator``'s weights into codectk's ``dac`` discriminator."""
    ours.load_state_dict(DACConverter().discriminator_state_dict(ref.state_dict(), ours))


def weighted_sum(outs: list[list[Tensor]], seed: int = 0) -> Tensor:
    """sum over every output tensor of <output, fixed random weights>: a scalar whose
    gradient reaches every feature map and logit with a different weight."""
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for sub in outs:
        for t in sub:
            total = total + (t * torch.randn(t.shape, generator=g).to(t.dtype)).sum()
    return total
