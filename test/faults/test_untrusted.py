"""Files from strangers: pickles, archives and YAML are refused with a clear error."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

import codectk
from codectk.config import ConfigError, load_train_config
from codectk.io.modelfile import CheckpointError

MARKER = "codectk_pwned"


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _good_pack_members(config_text: str = "codec: soundstream\n") -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save(
        {
            "format": "codectk-model",
            "version": 1,
            "config": {},
            "model": {},
            "step": 0,
            "metrics": {},
        },
        buf,
    )
    meta = {"format": "codectk-packed-model", "version": 1}
    return {
        "meta.json": json.dumps(meta).encode(),
        "config.yaml": config_text.encode(),
        "model.pt": buf.getvalue(),
    }


def test_hostile_checkpoint_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "codectk-model", "version": 1, "model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights-only"):
        codectk.load_codec(tmp_path / "evil.pt")
    assert not (tmp_path / MARKER).exists()


def test_hostile_pack_is_refused_and_nothing_extracted(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    members = _good_pack_members()
    buf = io.BytesIO()
    torch.save({"format": "codectk-model", "version": 1, "model": Evil()}, buf)
    members["model.pt"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(CheckpointError, match="cannot load as weights only"):
        codectk.load_codec(tmp_path / "evil.zip")
    assert not (tmp_path / MARKER).exists()
    assert not (tmp_path.parent.parent / "escaped.txt").exists()


def test_truncated_pack(tmp_path: Path):
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        for name, data in _good_pack_members().items():
            zf.writestr(name, data)
    blob = (tmp_path / "ok.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError):
        codectk.load_codec(tmp_path / "cut.zip")


def test_yaml_tags_are_refused(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text(f"codec: !!python/object/apply:os.system ['touch {tmp_path / MARKER}']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_train_config(p)
    assert not (tmp_path / MARKER).exists()
