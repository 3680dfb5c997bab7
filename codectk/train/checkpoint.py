"""Checkpoint files: atomic writes, safe loads (``weights_only=True``), averaging.

Two kinds of file, both ``torch.save`` dicts tagged with a format name and version:

* model files (``<step>steps.pt``, ``valid.<metric>.best.pt``,
  ``valid.<metric>.ave_<N>best.pt``, packed ``model.pt``):
  ``{"format": "codectk-model", "version": 1, "config": {...}, "model": state_dict,
  "step": int, "metrics": {...}}``
* the resume state ``checkpoint.pt``: ``{"format": "codectk-train-state", "version": 1,
  ...}`` with every model, optimizer and scheduler state, the step, RNG states, the
  n-best table and the training history.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from codectk.errors import CodectkError
from codectk.fileio import atomic_replace_from

MODEL_FORMAT = "codectk-model"
STATE_FORMAT = "codectk-train-state"
FORMAT_VERSION = 1


class CheckpointError(CodectkError, RuntimeError):
    """An unreadable, foreign or incompatible checkpoint; the message names the file."""


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary sibling, then rename: a kill leaves the old file."""
    atomic_replace_from(lambda tmp: torch.save(obj, tmp), path)


def load_file(
    path: str | os.PathLike, expect_format: str, map_location: str = "cpu"
) -> dict[str, Any]:
    """Load a codectk checkpoint with ``weights_only=True`` and check its format tag.

    Raises:
        CheckpointError: missing file, not loadable as weights only, wrong format name or
            unsupported version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot load as a weights-only checkpoint: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != expect_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: not a {expect_format} file (format {got!r})")
    if obj.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: {expect_format} version {obj.get('version')} not supported; "
            f"this codectk reads version {FORMAT_VERSION}"
        )
    return obj


def model_file(config: dict, state_dict: dict, step: int, metrics: dict | None = None) -> dict:
    """The dict stored in a model file."""
    return {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "config": config,
        "model": state_dict,
        "step": int(step),
        "metrics": dict(metrics or {}),
    }


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Average floating-point tensors over snapshots; other tensors come from the last one.

    Raises:
        ValueError: empty list or snapshots with different keys.
    """
    if not state_dicts:
        raise ValueError("no state dicts to average")
    keys = set(state_dicts[0])
    for sd in state_dicts[1:]:
        if set(sd) != keys:
            raise ValueError("cannot average snapshots with different parameters")
    out = {}
    for key, last in state_dicts[-1].items():
        if torch.is_floating_point(last):
            out[key] = (
                sum(sd[key].double() for sd in state_dicts).div(len(state_dicts)).to(last.dtype)
            )
        else:
            out[key] = last.clone()
    return out
