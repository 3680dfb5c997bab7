"""The ``.ctk`` compressed-audio file: codec codes bit-packed behind a versioned header.

Layout (all integers little-endian; ``docs/bitstream.md`` has the byte table)::

    magic  b"CTKB"          4 bytes
    version                 1 byte (FORMAT_VERSION)
    header length H         4 bytes (uint32)
    header                  H bytes, compact UTF-8 JSON (HEADER_KEYS)
    header CRC32            4 bytes, over version, H and the header
    chunks, each:
        frame count n       4 bytes (uint32)
        payload length P    4 bytes (uint32), P = ceil(n * K' * bits / 8)
        payload             P bytes: n frames x K' codes, frame-major, ``bits`` bits
                            each, most significant bit first, zero-padded to a byte
        CRC32               4 bytes, over n, P and the payload

``bits = ceil(log2(codebook_size))``, so the file size is the nominal bitrate times the
duration plus ``FIXED_OVERHEAD + H`` bytes and ``CHUNK_OVERHEAD`` (+ < 1 padding) bytes
per chunk. Every byte is covered by a check: a bad magic, version, CRC, truncation,
trailing bytes or malformed header raises :class:`BitstreamError`.

Shapes: K' codebooks used, F frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from codectk.errors import CodectkError
from codectk.io.fileio import atomic_write

MAGIC = b"CTKB"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DEFAULT_CHUNK_FRAMES = 1024
IDENTITY_HEX_CHARS = 16
_PREFIX = struct.Struct("<4sBI")  # magic, version, header length
_U32 = struct.Struct("<I")
_CHUNK = struct.Struct("<II")  # frame count, payload length
FIXED_OVERHEAD = _PREFIX.size + _U32.size  # 13 bytes around the JSON header
CHUNK_OVERHEAD = _CHUNK.size + _U32.size  # 12 bytes per chunk
MAX_HEADER_BYTES = 1 << 16
MAX_CODEBOOK_SIZE = 1 << 31
MAX_CODEBOOKS = 1024

#: JSON header keys and their meaning; all are required, no other key is allowed.
HEADER_KEYS = {
    "model_id": "model identity, see model_identity() (hex str)",
    "codec": "codec class name (str)",
    "sample_rate": "Hz of the decoded waveform (int)",
    "hop_length": "samples per frame (int)",
    "codebook_size": "entries per codebook, >= 2 (int)",
    "n_codebooks": "K', codebooks used (int)",
    "length": "original length in samples at sample_rate (int)",
    "n_frames": "F, code frames (int)",
    "chunk_frames": "frames per chunk, the last chunk may hold fewer (int)",
}
_STR_KEYS = ("model_id", "codec")


class BitstreamError(CodectkError, ValueError):
    """A ``.ctk`` file or code array that cannot be read or written; the message says why."""


def bits_per_code(codebook_size: int) -> int:
    """Bits per code, ``ceil(log2(codebook_size))`` (exact for powers of two)."""
    return max(1, (int(codebook_size) - 1).bit_length())


def payload_bytes(n_frames: int, n_codebooks: int, codebook_size: int) -> int:
    """Payload bytes of a chunk of ``n_frames`` frames."""
    return -(-n_frames * n_codebooks * bits_per_code(codebook_size) // 8)


def nominal_bitrate(header: dict) -> float:
    """Nominal bitrate in kbps, ``K' * log2(codebook_size) * sample_rate / hop / 1000``."""
    frame_rate = header["sample_rate"] / header["hop_length"]
    return header["n_codebooks"] * math.log2(header["codebook_size"]) * frame_rate / 1000.0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(header: Any) -> dict:
    """Validate types, ranges and consistency; raise BitstreamError naming the bad key."""
    if not isinstance(header, dict):
        raise BitstreamError(
            f"malformed header: expected a JSON object, got {type(header).__name__}"
        )
    missing = sorted(set(HEADER_KEYS) - set(header))
    unknown = sorted(set(header) - set(HEADER_KEYS))
    if missing or unknown:
        raise BitstreamError(f"malformed header: missing keys {missing}, unknown keys {unknown}")
    for key in HEADER_KEYS:
        value = header[key]
        if key in _STR_KEYS:
            if not isinstance(value, str):
                raise BitstreamError(f"malformed header: {key} must be a string, got {value!r}")
        elif not _is_int(value) or value < 0:
            raise BitstreamError(f"malformed header: {key} must be an int >= 0, got {value!r}")
    limits = {
        "sample_rate": (1, 1 << 24),
        "hop_length": (1, 1 << 24),
        "codebook_size": (2, MAX_CODEBOOK_SIZE),
        "n_codebooks": (1, MAX_CODEBOOKS),
        "chunk_frames": (1, 1 << 24),
    }
    for key, (lo, hi) in limits.items():
        if not lo <= header[key] <= hi:
            raise BitstreamError(f"malformed header: {key} {header[key]} not in [{lo}, {hi}]")
    if header["length"] > header["n_frames"] * header["hop_length"]:
        raise BitstreamError(
            f"malformed header: length {header['length']} samples exceeds n_frames "
            f"{header['n_frames']} x hop_length {header['hop_length']}"
        )
    return header


def _pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative ints (N,) into N * bits bits, MSB first, zero-padded to a byte."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    planes = (values[:, None] >> shifts) & 1  # (N, bits)
    return np.packbits(planes.astype(np.uint8), axis=None).tobytes()


def _unpack_bits(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits`: (count,) int64."""
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=count * bits)
    weights = np.left_shift(np.int64(1), np.arange(bits - 1, -1, -1, dtype=np.int64))
    return flat.reshape(count, bits).astype(np.int64) @ weights  # (count, bits) -> (count,)


def pack_codes(codes: np.ndarray, header: dict) -> bytes:
    """Serialise codes and their header to the ``.ctk`` byte format.

    Args:
        codes (np.ndarray): integer array (K', F), values in [0, codebook_size).
        header (dict): ``model_id``, ``codec``, ``sample_rate``, ``hop_length``,
            ``codebook_size`` and ``length`` (samples); ``n_codebooks`` and ``n_frames``
            are taken from ``codes`` (if given they must agree) and ``chunk_frames``
            defaults to :data:`DEFAULT_CHUNK_FRAMES`.

    Returns:
        bytes: the file contents.

    Raises:
        BitstreamError: codes not a 2-D integer array, values out of range, or a header
            that is malformed or disagrees with ``codes``.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise BitstreamError(
            f"codes must be a 2-D integer array (K', F), got {codes.dtype} {codes.shape}"
        )
    k, f = codes.shape
    header = dict(header)
    header.setdefault("chunk_frames", DEFAULT_CHUNK_FRAMES)
    for key, actual in (("n_codebooks", k), ("n_frames", f)):
        if header.setdefault(key, actual) != actual:
            raise BitstreamError(f"header {key} {header[key]} but codes have shape {codes.shape}")
    _check_header(header)
    size = header["codebook_size"]
    if codes.size and (codes.min() < 0 or codes.max() >= size):
        raise BitstreamError(
            f"code values must lie in [0, {size}), got [{codes.min()}, {codes.max()}]"
        )
    bits = bits_per_code(size)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    if len(text) > MAX_HEADER_BYTES:
        raise BitstreamError(f"header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text))
    out = [prefix, text, _U32.pack(zlib.crc32(prefix[4:] + text))]
    frames = codes.T.astype(np.int64)  # (K', F) -> (F, K'): frame-major
    step = header["chunk_frames"]
    for start in range(0, f, step):
        block = frames[start : start + step]
        payload = _pack_bits(block.reshape(-1), bits)
        head = _CHUNK.pack(len(block), len(payload))
        out += [head, payload, _U32.pack(zlib.crc32(payload, zlib.crc32(head)))]
    return b"".join(out)


def unpack_codes(data: bytes) -> tuple[dict, np.ndarray]:
    """Parse and verify a ``.ctk`` byte string.

    Args:
        data (bytes): the file contents.

    Returns:
        tuple: (header dict, codes int64 array (K', F)).

    Raises:
        BitstreamError: bad magic, unsupported version, truncated data, a CRC mismatch
            (naming the header or the chunk), a malformed header, a chunk that disagrees
            with the header, code values >= codebook_size, or trailing bytes. No other
            exception escapes for any input.
    """
    data = bytes(data)
    if len(data) < _PREFIX.size:
        raise BitstreamError(f"truncated: {len(data)} bytes, shorter than the file prefix")
    magic, version, n_text = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"not a codectk bitstream: magic {magic!r}, expected {MAGIC!r}")
    if version not in SUPPORTED_VERSIONS:
        raise BitstreamError(
            f"bitstream format version {version} not supported; supported: {SUPPORTED_VERSIONS}"
        )
    pos = _PREFIX.size + n_text
    if n_text > MAX_HEADER_BYTES:
        raise BitstreamError(f"malformed header: length {n_text} exceeds {MAX_HEADER_BYTES}")
    if len(data) < pos + _U32.size:
        raise BitstreamError(f"truncated: header needs {pos + 4} bytes, file has {len(data)}")
    text = data[_PREFIX.size : pos]
    (crc,) = _U32.unpack_from(data, pos)
    if zlib.crc32(data[4:pos]) != crc:
        raise BitstreamError("header CRC mismatch: the file is corrupt")
    pos += _U32.size
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BitstreamError(f"malformed header: {exc}") from None
    header = _check_header(header)
    k, f, size = header["n_codebooks"], header["n_frames"], header["codebook_size"]
    bits, step = bits_per_code(size), header["chunk_frames"]
    n_chunks = -(-f // step)
    need = n_chunks * CHUNK_OVERHEAD + (f * k * bits) // 8
    if len(data) - pos < need:  # checked before allocating anything of size F x K'
        raise BitstreamError(
            f"truncated: header announces {f} frames (>= {need} bytes), {len(data) - pos} left"
        )
    frames = np.empty((f, k), dtype=np.int64)
    for i in range(n_chunks):
        n = min(step, f - i * step)
        p = payload_bytes(n, k, size)
        if len(data) < pos + CHUNK_OVERHEAD + p:
            raise BitstreamError(f"truncated in chunk {i} of {n_chunks}")
        got_n, got_p = _CHUNK.unpack_from(data, pos)
        payload = data[pos + _CHUNK.size : pos + _CHUNK.size + p]
        (crc,) = _U32.unpack_from(data, pos + _CHUNK.size + p)
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + _CHUNK.size])) != crc:
            raise BitstreamError(f"CRC mismatch in chunk {i} of {n_chunks}: the file is corrupt")
        if (got_n, got_p) != (n, p):
            raise BitstreamError(
                f"chunk {i}: {got_n} frames / {got_p} bytes, header implies {n} / {p}"
            )
        values = _unpack_bits(payload, n * k, bits)
        if values.size and values.max() >= size:
            raise BitstreamError(f"chunk {i}: code value {values.max()} out of range [0, {size})")
        frames[i * step : i * step + n] = values.reshape(n, k)  # (n * K',) -> (n, K')
        pos += CHUNK_OVERHEAD + p
    if pos != len(data):
        raise BitstreamError(f"{len(data) - pos} trailing bytes after the last chunk")
    return header, np.ascontiguousarray(frames.T)  # (F, K') -> (K', F)


def write_bitstream(path: str | os.PathLike, codes: np.ndarray, header: dict) -> int:
    """Write :func:`pack_codes` output atomically (temporary file, then rename).

    Args:
        path: destination ``.ctk`` file; its folder is created.
        codes (np.ndarray): (K', F) integer codes.
        header (dict): as for :func:`pack_codes`.

    Returns:
        int: bytes written.

    Raises:
        BitstreamError: as :func:`pack_codes`.
    """
    data = pack_codes(codes, header)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return len(data)


def read_bitstream(path: str | os.PathLike) -> tuple[dict, np.ndarray]:
    """Read and verify a ``.ctk`` file.

    Returns:
        tuple: (header dict, codes int64 array (K', F)).

    Raises:
        BitstreamError: as :func:`unpack_codes`, the message prefixed by ``path``; or a
            missing/unreadable file.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BitstreamError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return unpack_codes(data)
    except BitstreamError as exc:
        raise BitstreamError(f"{path}: {exc}") from None


def _effective_tensors(codec: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with each parametrised tensor (weight norm) replaced by its value, so
    folding the parametrisation does not change the identity."""
    state = {k: v for k, v in codec.state_dict().items() if ".parametrizations." not in k}
    for name, module in codec.named_modules():
        if parametrize.is_parametrized(module):
            for tensor_name in module.parametrizations:
                key = f"{name}.{tensor_name}" if name else tensor_name
                state[key] = getattr(module, tensor_name)
    return state


def model_identity(codec: nn.Module) -> str:
    """A short hash naming a codec's weights, stored in each ``.ctk`` header.

    SHA-256 over the class name and, in sorted key order, each state-dict tensor's name,
    dtype, shape and bytes; weight-norm parametrisations count as their folded weight,
    so :func:`codectk.nn.conv.remove_weight_norm_` keeps the identity.

    Args:
        codec (nn.Module): the codec.

    Returns:
        str: the first :data:`IDENTITY_HEX_CHARS` hex digits.
    """
    digest = hashlib.sha256(type(codec).__name__.encode())
    with torch.no_grad():
        tensors = _effective_tensors(codec)
        for key in sorted(tensors):
            t = tensors[key].detach().cpu().contiguous()
            digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
            if t.dtype == torch.bool:
                t = t.to(torch.uint8)
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:IDENTITY_HEX_CHARS]
