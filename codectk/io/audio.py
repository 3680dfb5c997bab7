"""Audio I/O for codectk: soundfile for reading and writing, soxr for resampling.

``wav.scp`` entries are either a file path or a Kaldi pipe command ending in ``|``
(``sox in.flac -t wav - |``), whose standard output is read as an audio file.

:func:`as_float_audio` and :func:`convert_audio` turn what users hold (numpy arrays or
tensors, float or integer PCM, any rate and channel count) into what a codec takes.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from codectk.errors import CodectkError
from codectk.io.fileio import atomic_replace_from


class AudioError(CodectkError, RuntimeError):
    """An audio file or pipe that cannot be read; the message names it."""


class AudioFormatError(CodectkError, ValueError):
    """An in-memory waveform of a type, shape or size codectk cannot use; the message
    says what was given and what is accepted."""


#: Integer PCM types and the divisor that maps them to [-1, 1) (uint8 is offset by 128).
PCM_SCALE = {
    torch.int16: 2.0**15,
    torch.int32: 2.0**31,
    torch.int8: 2.0**7,
    torch.uint8: 2.0**7,
}
ACCEPTED = "float32, float64, float16, bfloat16, int16, int32, int8 or uint8"


def as_float_audio(wav, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A waveform as a floating-point tensor in [-1, 1].

    Args:
        wav (Tensor | np.ndarray): samples of any shape; floating point (taken as it is)
            or integer PCM (int16 / int32 / int8 divided by 2^15 / 2^31 / 2^7; uint8
            centred on 128 first, as in 8-bit WAV).
        dtype (torch.dtype): the floating-point type to return.

    Returns:
        Tensor: same shape, ``dtype``, on the input's device (CPU for numpy); the input
        itself when it already has that type.

    Raises:
        AudioFormatError: not an array or tensor, or an unsupported element type
            (complex, bool, int64, ...).
    """
    if isinstance(wav, np.ndarray):
        if wav.dtype.byteorder not in ("=", "|") or not wav.flags.writeable:
            wav = wav.astype(wav.dtype.newbyteorder("="))  # torch wants native, writable
        try:
            wav = torch.from_numpy(np.ascontiguousarray(wav))
        except TypeError as exc:
            raise AudioFormatError(f"waveform of numpy type {wav.dtype}: use {ACCEPTED}") from exc
    if not isinstance(wav, torch.Tensor):
        raise AudioFormatError(
            f"waveform must be a torch.Tensor or numpy.ndarray, got {type(wav).__name__}"
        )
    if wav.dtype in PCM_SCALE:
        x = wav.to(dtype)
        if wav.dtype == torch.uint8:
            x = x - 128.0
        return x / PCM_SCALE[wav.dtype]
    if not wav.is_floating_point() or wav.is_complex():
        raise AudioFormatError(f"waveform of type {wav.dtype}: use {ACCEPTED}")
    return wav if wav.dtype == dtype else wav.to(dtype)


def convert_audio(wav, sr: int, target_sr: int, target_channels: int) -> torch.Tensor:
    """Resample and re-channel a waveform for a codec (EnCodec's ``convert_audio``).

    Channels: ``target_channels == 1`` averages the channels (downmix); a mono input is
    repeated to ``target_channels`` (upmix); an input with more channels than
    ``target_channels`` keeps the first ones (as EnCodec's). Resampling uses soxr
    (high quality) on the CPU.

    Args:
        wav (Tensor | np.ndarray): (T,) mono, or (..., C, T) with C channels, in any
            type :func:`as_float_audio` accepts. A (T, C) array from
            ``soundfile.read`` must be transposed first (``wav.T``).
        sr (int): its sample rate in Hz.
        target_sr (int): the codec's ``sample_rate`` in Hz.
        target_channels (int): the codec's ``channels`` (1 for every mono codec).

    Returns:
        Tensor: float32 (..., target_channels, T') with T' = T * target_sr / sr rounded
        (soxr's length), on the input's device; a (T,) input gives
        (target_channels, T').

    Raises:
        AudioFormatError: no samples, a bad type, a rate or channel count <= 0, or a
            multi-channel input for more channels than it has.
    """
    x = as_float_audio(wav)
    if x.dim() == 1:
        x = x[None]  # (T,) -> (1, T)
    if x.dim() < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise AudioFormatError(f"waveform of shape {tuple(x.shape)} has no samples")
    if min(sr, target_sr, target_channels) <= 0:
        raise AudioFormatError(
            f"sample rates and channels must be > 0, got sr={sr}, target_sr={target_sr}, "
            f"target_channels={target_channels}"
        )
    channels = x.shape[-2]
    if target_channels == 1:
        x = x.mean(dim=-2, keepdim=True)
    elif channels == 1:
        x = x.expand(*x.shape[:-2], target_channels, x.shape[-1])
    elif channels >= target_channels:
        x = x[..., :target_channels, :]
    else:
        raise AudioFormatError(
            f"cannot make {target_channels} channels from {channels}: give 1 channel "
            f"(repeated) or at least {target_channels}"
        )
    if sr == target_sr:
        return x.contiguous()
    lead, length = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, length).T.cpu().numpy()  # (..., C, T) -> (T, N) for soxr
    y = soxr.resample(np.ascontiguousarray(flat), sr, target_sr, quality="HQ")
    y = torch.from_numpy(np.ascontiguousarray(y.T, np.float32))  # (T', N) -> (N, T')
    return y.reshape(*lead, y.shape[-1]).to(wav.device if isinstance(wav, torch.Tensor) else "cpu")


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


def check_waveform(name: str, x) -> np.ndarray:
    """A metric's input as a numpy waveform, checked.

    Args:
        name (str): the argument's name, for the message (``"ref"``, ``"deg"``).
        x (array-like): waveform, shape (T,).

    Returns:
        np.ndarray: ``np.asarray(x)``, shape (T,).

    Raises:
        ValueError: ``x`` is not 1-D, is empty, or has NaN or infinite samples.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D waveform (T,), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has NaN or infinite samples")
    return x


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
