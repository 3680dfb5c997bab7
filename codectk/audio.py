"""Audio I/O for codectk: soundfile for reading and writing, soxr for resampling.

``wav.scp`` entries are either a file path or a Kaldi pipe command ending in ``|``
(``sox in.flac -t wav - |``), whose standard output is read as an audio file.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from codectk.errors import CodectkError
from codectk.fileio import atomic_replace_from


class AudioError(CodectkError, RuntimeError):
    """An audio file or pipe that cannot be read; the message names it."""


def read_audio(spec: str, where: str = "") -> tuple[np.ndarray, int]:
    """Read a file path or a ``wav.scp`` pipe command.

    Args:
        spec (str): a path, or a shell command ending in ``|`` that writes audio to stdout.
        where (str): context for errors, e.g. ``"data/train/wav.scp:12"``.

    Returns:
        tuple: (wav, fs) with wav float32 in [-1, 1], shape (C, T), and fs in Hz.

    Raises:
        AudioError: missing or undecodable file, failing pipe, empty audio, or non-finite
            samples; the message names ``spec`` and ``where``.
    """
    ctx = f" ({where})" if where else ""
    spec = spec.strip()
    try:
        if spec.endswith("|"):
            cmd = spec[:-1].strip()
            proc = subprocess.run(cmd, shell=True, capture_output=True, check=False)
            if proc.returncode != 0:
                err = proc.stderr.decode(errors="replace").strip()[-500:]
                raise AudioError(f"pipe command failed (exit {proc.returncode}): {cmd}{ctx}: {err}")
            data, fs = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        else:
            if not os.path.exists(spec):
                raise AudioError(f"audio file not found: {spec}{ctx}")
            data, fs = sf.read(spec, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / EOFError
        raise AudioError(f"cannot decode audio {spec}{ctx}: {exc}") from None
    wav = np.ascontiguousarray(data.T)  # (T, C) -> (C, T)
    if wav.shape[1] == 0:
        raise AudioError(f"audio has no samples: {spec}{ctx}")
    if not np.isfinite(wav).all():
        raise AudioError(f"audio has NaN or infinite samples: {spec}{ctx}")
    return wav, int(fs)


def to_mono(wav: np.ndarray) -> np.ndarray:
    """Average channels: (C, T) -> (T,); a 1-D input is returned as is."""
    return wav if wav.ndim == 1 else wav.mean(axis=0)


def resample(wav: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Resample with soxr (high quality).

    Args:
        wav (np.ndarray): shape (T,) or (C, T), float32.
        fs_in (int), fs_out (int): sample rates in Hz.

    Returns:
        np.ndarray: float32, same layout, ``round(T * fs_out / fs_in)`` samples.
    """
    if fs_in == fs_out:
        return wav.astype(np.float32, copy=False)
    if wav.ndim == 1:
        return soxr.resample(wav, fs_in, fs_out, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(soxr.resample(wav.T, fs_in, fs_out, quality="HQ").T, np.float32)


def write_audio(path: str | os.PathLike, wav: np.ndarray, fs: int, subtype: str = "PCM_16") -> None:
    """Write a waveform atomically (temporary file, then rename).

    Args:
        path: destination (.wav or .flac).
        wav (np.ndarray): float in [-1, 1], shape (T,) or (C, T); values outside are clipped.
        fs (int): sample rate in Hz.
        subtype (str): soundfile subtype, e.g. ``"PCM_16"`` or ``"FLOAT"``.
    """
    data = np.asarray(wav, dtype=np.float32)
    data = data if data.ndim == 1 else data.T  # soundfile wants (T, C)
    if subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)
    fmt = "FLAC" if Path(path).suffix.lower() == ".flac" else "WAV"
    atomic_replace_from(lambda tmp: sf.write(tmp, data, fs, subtype=subtype, format=fmt), path)
