"""Atomic file writes: write to a temporary file in the same folder, then rename (a whole
folder: :func:`atomic_dir`); and the reading of codectk's versioned JSON headers
(:func:`read_versioned_json`).

A job killed mid-write leaves either the old file or the new one, never a torn one.
The new file gets the permissions a plain ``open(path, "w")`` would give it: those of
the file it replaces, or ``0o666`` less the process umask for a new file (a temporary
file is created private, ``0o600``; it is opened up just before the rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows
    (``/proc/self/status``); elsewhere by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def target_mode(path: str | os.PathLike) -> int:
    """Permission bits for a file about to be written at ``path``: those of the existing
    file (a replacement keeps its mode), else ``0o666 & ~umask`` as ``open`` gives."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def _publish(tmp: str, path: Path) -> None:
    """Give ``tmp`` the mode ``path`` should have, then rename it onto ``path``."""
    os.chmod(tmp, target_mode(path))
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    Args:
        path: destination file; its folder is created if missing.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (ignored in binary mode).

    Yields:
        the open temporary file. On an exception it is removed and ``path`` is untouched.
        On success ``path`` has the permissions of the file it replaced, or those the
        umask gives a new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_replace_from(tmp_writer, path: str | os.PathLike) -> None:
    """Call ``tmp_writer(tmp_path)`` to create a file, then rename it onto ``path``.

    For libraries that want a file name rather than a file object (``torch.save``,
    ``soundfile.write``, ``matplotlib``'s ``savefig``). Permissions as
    :func:`atomic_write`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        tmp_writer(tmp)
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A new private sibling folder of ``path`` to fill. When the block ends without an
    exception it replaces ``path`` whole (with the usual permissions); otherwise it is
    removed and ``path`` is left as it was."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp made it private
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_versioned_json(path: str | os.PathLike, kind: str, version: int, missing: str) -> dict:
    """Read a JSON header ``{"format_version": N, ...}`` that codectk writes beside its
    artifacts (``codes.json``, ``tokens.json``).

    Args:
        path: the JSON file.
        kind (str): what it describes, for the message (``"codes"``, ``"token"``).
        version (int): the format version this codectk reads.
        missing (str): why the file should be there, for the message when it is not.

    Returns:
        dict: the header.

    Raises:
        ValueError: a missing file, or a format version other than ``version``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: missing ({missing})")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != version:
        raise ValueError(
            f"{path}: {kind} format version {meta.get('format_version')} not supported; "
            f"this codectk reads version {version}"
        )
    return meta
