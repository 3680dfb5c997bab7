"""Discrete codes on disk: Kaldi ark/scp (through kaldiio) plus a JSON sidecar.

Kaldi archives hold integer data only as vectors, so each utterance's codes (K, F)
are stored frame-major as an int32 vector of length F * K (``codes.T.reshape(-1)``);
``codes.json`` next to the scp records K, the codebook size and the frame rate.

Layout of a decode folder::

    codes.ark  codes.scp  codes.json
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import kaldiio
import numpy as np

from codectk.io.fileio import atomic_replace_from, atomic_write, read_versioned_json

CODES_FORMAT_VERSION = 1


def write_codes(
    out_prefix: str | os.PathLike,
    codes: Mapping[str, np.ndarray],
    codebook_size: int,
    frame_rate: float,
    sample_rate: int,
    codebooks_per_stream: int = 1,
) -> None:
    """Write ``<out_prefix>.ark``, ``.scp`` and ``.json`` (atomically, scp sorted).

    Args:
        out_prefix: path without extension, e.g. ``exp/x/decode_test/codes``.
        codes: utt -> integer array (K, F); every entry must have the same K.
        codebook_size (int): entries per codebook.
        frame_rate (float): code frames per second (Hz).
        sample_rate (int): the codec's sample rate in Hz.
        codebooks_per_stream (int): consecutive codebooks forming one stream (ESC: 3),
            recorded in ``codes.json``.

    Raises:
        ValueError: entries with different K or values outside [0, codebook_size).
    """
    prefix = Path(out_prefix)
    ks = {np.asarray(c).shape[0] for c in codes.values()}
    if len(ks) > 1:
        raise ValueError(
            f"{prefix}: all utterances must use the same number of codebooks, got {ks}"
        )
    for utt, c in codes.items():
        if c.size and (c.min() < 0 or c.max() >= codebook_size):
            raise ValueError(f"{prefix}: {utt} has code values outside [0, {codebook_size})")
    keys = sorted(codes, key=lambda k: k.encode())
    ark, scp = prefix.with_suffix(".ark"), prefix.with_suffix(".scp")

    def _write(tmp: str) -> None:
        data = {k: np.ascontiguousarray(np.asarray(codes[k]).T.reshape(-1), np.int32) for k in keys}
        kaldiio.save_ark(tmp, data, scp=tmp + ".scp")

    atomic_replace_from(_write, ark)
    tmp_scp = next(ark.parent.glob(f".{ark.stem}.*.ark.scp"))
    lines = tmp_scp.read_text().replace(str(tmp_scp)[: -len(".scp")], str(ark)).splitlines()
    tmp_scp.unlink()
    with atomic_write(scp) as f:
        f.writelines(line + "\n" for line in lines)
    meta = {
        "format_version": CODES_FORMAT_VERSION,
        "n_codebooks": int(ks.pop()) if ks else 0,
        "codebook_size": int(codebook_size),
        "frame_rate": float(frame_rate),
        "sample_rate": int(sample_rate),
        "codebooks_per_stream": int(codebooks_per_stream),
        "layout": "int32 vector, frame-major (F * K); reshape(F, K).T gives (K, F)",
    }
    with atomic_write(prefix.with_suffix(".json")) as f:
        json.dump(meta, f, indent=2)


def read_codes_meta(scp: str | os.PathLike) -> dict:
    """Read the ``codes.json`` beside ``codes.scp``.

    Raises:
        ValueError: missing sidecar or unsupported format version.
    """
    return read_versioned_json(
        Path(scp).with_suffix(".json"),
        "codes",
        CODES_FORMAT_VERSION,
        "codes written by codectk carry it",
    )


def iter_codes(scp: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (utt, codes (K, F) int64) from a ``codes.scp`` written by :func:`write_codes`."""
    k = read_codes_meta(scp)["n_codebooks"]
    for utt, vec in kaldiio.load_scp_sequential(str(scp)):
        if k == 0 or vec.size % k:
            raise ValueError(f"{scp}: {utt} has {vec.size} values, not a multiple of K={k}")
        yield utt, vec.reshape(-1, k).T.astype(np.int64)


def read_codes(scp: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every utterance of a ``codes.scp``: utt -> codes (K, F) int64."""
    return dict(iter_codes(scp))
