"""Atomic writes give files the permissions a plain ``open`` would (umask, or the mode
of the file they replace), not tempfile's private 0600."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from codectk.io.audio import write_audio
from codectk.io.bitstream import write_bitstream
from codectk.io.fileio import atomic_replace_from, atomic_write, current_umask
from codectk.io.modelfile import save_atomic


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing():
    with umask(0o027):
        assert current_umask() == 0o027
        assert current_umask() == 0o027


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_new_files_follow_the_umask(tmp_path: Path, mask: int):
    with umask(mask):
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x\n")
        atomic_replace_from(lambda tmp: Path(tmp).write_bytes(b"y"), tmp_path / "b.bin")
        write_audio(tmp_path / "c.wav", np.zeros(160, np.float32), 16000)
        save_atomic({"x": torch.zeros(2)}, tmp_path / "d.pt")
        header = {
            "model_id": "0" * 16,
            "codec": "X",
            "sample_rate": 16000,
            "hop_length": 160,
            "codebook_size": 4,
            "length": 160,
        }
        write_bitstream(tmp_path / "e.ctk", np.zeros((1, 1), np.int64), header)
    for name in ("a.txt", "b.bin", "c.wav", "d.pt", "e.ctk"):
        assert mode(tmp_path / name) == 0o666 & ~mask, name


def test_replacing_keeps_the_existing_mode(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    path.chmod(0o640)
    with umask(0o002):
        with atomic_write(path) as f:
            f.write("new\n")
        assert mode(path) == 0o640
        path.chmod(0o604)
        atomic_replace_from(lambda tmp: Path(tmp).write_text("newer\n"), path)
    assert mode(path) == 0o604 and path.read_text() == "newer\n"
    assert not list(tmp_path.glob(".*"))  # no temporary file left
