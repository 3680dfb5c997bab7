"""Map the authors' released state dicts onto codectk's modules.

codectk's EnCodec and DAC keep the authors' module layout (the same ``nn.Sequential``
indices), so a released key and a codectk key differ only in

* wrapper modules: the authors' ``SConv1d -> NormConv1d -> Conv1d`` chain is named
  ``<x>.conv.conv``, codectk's ``SConv1d`` holds its ``Conv1d`` as ``<x>.conv``; DAC's
  convolutions are bare (``<x>``) where codectk wraps them (``<x>.conv`` / ``<x>.convtr``);
* the weight-norm parametrisation: ``weight_g`` / ``weight_v`` (``torch.nn.utils.weight_norm``)
  or ``parametrizations.weight.original0`` / ``original1`` (the newer
  ``torch.nn.utils.parametrizations.weight_norm``, which codectk uses): the same tensors,
  g of shape (C_out, 1, 1) (C_in for transposed convs) and v the direction;
* a few family-specific names (quantizer containers), handled by regex renames.

:func:`canonical_key` removes the first two differences; :func:`map_state_dict` applies
the renames, matches canonical keys, checks shapes and that nothing is left over on
either side.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from codectk.config import TrainConfig
from codectk.errors import CodectkError
from codectk.models import CODECS

_WEIGHT_NORM = (
    ("parametrizations.weight.original0", "weight_g"),
    ("parametrizations.weight.original1", "weight_v"),
)
_WRAPPERS = frozenset({"conv", "convtr"})


class ConversionError(CodectkError, ValueError):
    """A released checkpoint that does not fit the codectk model; names the keys."""


def canonical_key(key: str) -> str:
    """Key with weight-norm names unified and conv wrapper modules dropped.

    Example: ``encoder.model.0.conv.conv.weight_g`` (EnCodec),
    ``encoder.model.0.conv.parametrizations.weight.original0`` (codectk) and
    ``encoder.model.0.weight_g`` all give ``encoder.model.0.weight_g``.

    Args:
        key (str): a state-dict key.

    Returns:
        str: the canonical key.
    """
    for new, old in _WEIGHT_NORM:
        key = key.replace(new, old)
    return ".".join(p for p in key.split(".") if p not in _WRAPPERS)


def key_map(
    keys: Sequence[str], target: nn.Module, renames: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """Which of ``target``'s state-dict keys each released key fills.

    Args:
        keys (Sequence[str]): the released state dict's keys.
        target (nn.Module): the codectk model.
        renames (Sequence[tuple[str, str]]): ``(pattern, replacement)`` regexes applied in
            order to every key before matching canonical keys (:func:`canonical_key`).

    Returns:
        dict[str, str]: released key -> codectk key, for the keys that have one.
    """
    by_canonical = {canonical_key(k): k for k in target.state_dict()}
    out = {}
    for key in keys:
        renamed = key
        for pattern, repl in renames:
            renamed = re.sub(pattern, repl, renamed)
        dest = by_canonical.get(canonical_key(renamed))
        if dest is not None:
            out[key] = dest
    return out


def map_state_dict(
    source: dict[str, Tensor],
    target: nn.Module,
    renames: Sequence[tuple[str, str]] = (),
) -> dict[str, Tensor]:
    """Rename a released state dict into ``target``'s keys.

    Args:
        source (dict[str, Tensor]): the authors' generator state dict.
        target (nn.Module): the codectk model to fill (its ``state_dict`` keys and shapes
            are the reference).
        renames (Sequence[tuple[str, str]]): ``(pattern, replacement)`` regexes applied in
            order to every source key before matching.

    Returns:
        dict[str, Tensor]: a state dict for ``target.load_state_dict(..., strict=True)``;
        tensors of equal size but another shape or dtype (e.g. EnCodec's ``inited`` flag
        of shape (1,) for codectk's scalar ``initialized``) are reshaped and cast.

    Raises:
        ConversionError: source keys with no target, target keys with no source, or a
            size mismatch (each names up to 10 keys).
    """
    wanted = target.state_dict()
    mapping = key_map(list(source), target, renames)
    out: dict[str, Tensor] = {}
    unmatched, bad = [], []
    for key, value in source.items():
        dest = mapping.get(key)
        if dest is None:
            unmatched.append(key)
            continue
        ref = wanted[dest]
        if value.numel() != ref.numel():
            bad.append(f"{key} {tuple(value.shape)} -> {dest} {tuple(ref.shape)}")
            continue
        out[dest] = value.detach().reshape(ref.shape).to(ref.dtype)
    missing = sorted(set(wanted) - set(out))
    if unmatched or bad or missing:
        parts = []
        if bad:
            parts.append(f"{len(bad)} size mismatches, e.g. {bad[:10]}")
        if unmatched:
            parts.append(
                f"{len(unmatched)} released keys without a codectk module: {unmatched[:10]}"
            )
        if missing:
            parts.append(f"{len(missing)} codectk keys not in the checkpoint: {missing[:10]}")
        raise ConversionError(
            "checkpoint does not fit the configured model (check the config's sizes, "
            "channels and number of codebooks): " + "; ".join(parts)
        )
    return out


class Converter:
    """What a family's converter provides (subclassed and registered in ``CONVERTERS``).

    Attributes:
        codec (str): the codectk codec name the checkpoint fills.
        renames (tuple[tuple[str, str], ...]): regex renames for :func:`map_state_dict`.
    """

    codec: str = ""
    renames: tuple[tuple[str, str], ...] = ()

    def generator_state_dict(self, obj: dict[str, Any]) -> dict[str, Tensor]:
        """The generator's state dict inside a loaded checkpoint file.

        Raises:
            ConversionError: the file does not hold one.
        """
        if not obj or not all(isinstance(v, Tensor) for v in obj.values()):
            raise ConversionError("expected a state dict (names -> tensors)")
        return obj

    def check_config(self, obj: dict[str, Any], codec_conf: dict[str, Any]) -> None:
        """Raise :class:`ConversionError` when the file's metadata contradicts the config."""


def convert_checkpoint(family: str, path: str | os.PathLike, config: TrainConfig) -> nn.Module:
    """Build the configured codec and load a released checkpoint into it.

    Args:
        family (str): a registered converter ("encodec", "dac").
        path (str | os.PathLike): the authors' checkpoint file.
        config (TrainConfig): a codectk config whose ``codec`` is the family's.

    Returns:
        nn.Module: the codec in eval mode, holding the released weights.

    Raises:
        ConversionError: an unreadable file, a config of another codec or contradicting
            the file's metadata, or keys and shapes that do not fit.
        ValueError: an unknown family (listing the valid ones).
    """
    from codectk.convert import CONVERTERS

    conv: Converter = CONVERTERS.build(family)
    if config.codec != conv.codec:
        raise ConversionError(
            f"family {family!r} fills codec {conv.codec!r}, the config has {config.codec!r}"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConversionError(f"{path}: cannot load as weights only: {exc}") from None
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: expected a dict, got {type(obj).__name__}")
    try:
        conv.check_config(obj, config.codec_conf)
        codec = CODECS.build(config.codec, config.codec_conf)
        codec.load_state_dict(map_state_dict(conv.generator_state_dict(obj), codec, conv.renames))
    except ConversionError as exc:
        raise ConversionError(f"{path}: {exc}") from None
    return codec.eval()
