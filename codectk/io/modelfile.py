"""Model and training-state files: atomic writes, safe loads (``weights_only=True``),
packed archives. File I/O only: building a codec from a model file is
:mod:`codectk.inference`'s, writing one during training :mod:`codectk.train`'s.

Two kinds of file, both ``torch.save`` dicts tagged with a format name and version:

* model files (``<step>steps.pt``, ``valid.<metric>.best.pt``,
  ``valid.<metric>.ave_<N>best.pt``, packed ``model.pt``):
  ``{"format": "codectk-model", "version": 1, "config": {...}, "model": state_dict,
  "step": int, "metrics": {...}}``
* the resume state ``checkpoint.pt``: ``{"format": "codectk-train-state", "version": 1,
  ...}`` with every model, optimizer and scheduler state, the step, RNG states, the
  n-best table and the training history.

A packed archive (stage 8, ``python -m codectk.bin.pack``) is a zip holding
``meta.json`` (``{"format": "codectk-packed-model", "version": 1, ...}``), ``model.pt``
and ``config.yaml``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml

from codectk.errors import CodectkError
from codectk.io.fileio import atomic_replace_from

MODEL_FORMAT = "codectk-model"
STATE_FORMAT = "codectk-train-state"
FORMAT_VERSION = 1
PACK_FORMAT = "codectk-packed-model"
PACK_VERSION = 1
DEFAULT_INFERENCE_MODEL = "valid.mel_distance.ave.pt"


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


def read_model_file(path: str | os.PathLike, checkpoint: str | None = None) -> tuple[dict, str]:
    """Read a codectk model file from an experiment folder, a ``.pt`` or a packed ``.zip``.

    Args:
        path: experiment folder, model file or stage-8 archive.
        checkpoint (str | None): file name inside an experiment folder (default
            ``valid.mel_distance.ave.pt``).

    Returns:
        tuple[dict, str]: the model-file dict (``config``, ``model`` state dict, ``step``,
        ``metrics``) and the file it came from, for messages.

    Raises:
        CheckpointError: missing, foreign or unsafe file.
    """
    path = Path(path)
    if path.is_dir():
        model = path / (checkpoint or DEFAULT_INFERENCE_MODEL)
        if not model.exists():
            found = sorted(p.name for p in path.glob("*.pt"))
            raise CheckpointError(f"{model}: not found; model files in {path}: {found}")
        return load_file(model, MODEL_FORMAT), str(model)
    if _is_pack(path):
        return read_packed_model(path), str(path)
    return load_file(path, MODEL_FORMAT), str(path)


def _is_pack(path: Path) -> bool:
    """A stage-8 archive (``.zip``, or any zip holding ``meta.json``); torch's own ``.pt``
    files are zips too, without it."""
    if path.suffix == ".zip":
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return "meta.json" in zf.namelist()


def read_packed_model(path: str | os.PathLike) -> dict:
    """Read the model file inside a packed archive without extracting anything to disk.

    Raises:
        CheckpointError: not a codectk pack, unsupported version, or a bad model file.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not {"meta.json", "model.pt", "config.yaml"} <= names:
                raise CheckpointError(
                    f"{path}: not a codectk packed model (members {sorted(names)[:10]})"
                )
            meta = json.loads(zf.read("meta.json"))
            if meta.get("format") != PACK_FORMAT or meta.get("version") != PACK_VERSION:
                raise CheckpointError(
                    f"{path}: pack format {meta.get('format')} v{meta.get('version')} not supported"
                )
            blob = zf.read("model.pt")
            config = yaml.safe_load(zf.read("config.yaml"))
    except (zipfile.BadZipFile, json.JSONDecodeError, yaml.YAMLError, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt packed model: {exc}") from None
    try:
        obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: model.pt cannot load as weights only: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: model.pt is not a codectk model file")
    obj["config"] = config
    return obj
