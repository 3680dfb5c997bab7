"""Encoding and decoding audio files to and from ``.ctk`` bitstreams with a loaded codec
(docs/bitstream.md): pairing inputs (a file, a folder or a ``wav.scp``) with outputs,
reading audio at the codec's rate, batched encoding and decoding, and a file's facts.
The command line is ``codectk encode / decode / info`` (:mod:`codectk.bin.ctk`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from codectk.batching import decode_batch, encode_batch, mixed_length_min_frames, plan_batches
from codectk.errors import CodectkError
from codectk.inference import load_codec, prepare_for_inference
from codectk.io.audio import read_audio, resample, to_mono, write_audio
from codectk.io.bitstream import (
    BitstreamError,
    model_identity,
    nominal_bitrate,
    read_bitstream,
    write_bitstream,
)
from codectk.io.datadir import read_scp

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aif", ".aiff", ".au", ".sph")
log = logging.getLogger("codectk.ctk")
READ_AHEAD = 16  # batches of files read at a time, sorted by length within


class UsageError(CodectkError, ValueError):
    """Input/output paths that do not fit together; the message names them."""


def plan_jobs(src: str, dst: str, suffixes: tuple[str, ...], out_suffix: str) -> list[tuple]:
    """Pair inputs with outputs.

    Args:
        src (str): a file, a folder (searched recursively for ``suffixes``) or a ``*.scp``.
        dst (str): the output file (for a file ``src``) or folder.
        suffixes (tuple): input file suffixes looked for in a folder.
        out_suffix (str): ``".ctk"`` or ``".wav"``.

    Returns:
        list[tuple]: ``(input spec, where, output path)`` triples, ``where`` naming the
        scp line for error messages.

    Raises:
        UsageError: missing input, an empty folder, or a folder/scp input with an
            existing non-folder OUT.
    """
    src_path, dst_path = Path(src), Path(dst)
    if src.endswith(".scp") or src_path.is_dir():
        if dst_path.exists() and not dst_path.is_dir():
            raise UsageError(f"{dst}: must be a folder when the input is a folder or scp")
    if src.endswith(".scp"):
        if not src_path.is_file():
            raise UsageError(f"{src}: no such scp file")
        table = read_scp(src_path)
        return [
            (spec, f"{src}:{i}", dst_path / f"{utt}{out_suffix}")
            for i, (utt, spec) in enumerate(table.items(), 1)
        ]
    if src_path.is_dir():
        files = sorted(p for p in src_path.rglob("*") if p.suffix.lower() in suffixes)
        if not files:
            raise UsageError(f"{src}: no {'/'.join(suffixes)} files in this folder")
        return [
            (str(p), str(p), dst_path / p.relative_to(src_path).with_suffix(out_suffix))
            for p in files
        ]
    if not src_path.is_file():
        raise UsageError(f"{src}: no such file or folder")
    return [(src, src, dst_path)]


def load_model(
    model: str,
    model_file: str | None = None,
    device: str = "cpu",
    compile: bool = False,
    precision: str = "fp32",
):
    """Load a codec for file coding and the identity its ``.ctk`` files carry.

    Args:
        model (str): experiment folder, model file or packed ``.zip``.
        model_file (str | None): model file inside an experiment folder.
        device (str): torch device.
        compile (bool): ``torch.compile`` the codec.
        precision (str): ``"fp32"`` or ``"bf16"`` (:data:`codectk.inference.PRECISIONS`).

    Returns:
        tuple: the codec, ready for inference (weight norm folded), and its
        :func:`codectk.io.bitstream.model_identity` (taken before folding; the same after).
    """
    codec = load_codec(model, model_file, device)
    identity = model_identity(codec)  # the same after folding weight norm
    codec = prepare_for_inference(codec, compile=compile, precision=precision)
    return codec, identity


def read_for_codec(codec, spec: str, where: str):
    """Read audio as mono float32 (T,) at the codec's rate (averaging channels and
    resampling with a warning).

    Raises:
        AudioError: unreadable input.
    """
    wav, fs = read_audio(spec, where)  # (C, T)
    if wav.shape[0] > 1:
        log.warning("%s: %d channels averaged to mono", where, wav.shape[0])
    x = to_mono(wav)  # (C, T) -> (T,)
    if fs != codec.sample_rate:
        log.warning("%s: resampled from %d Hz to %d Hz", where, fs, codec.sample_rate)
        x = resample(x, fs, codec.sample_rate)
    return x


def _header(codec, identity: str, length: int) -> dict:
    return {
        "model_id": identity,
        "codec": type(codec).__name__,
        "sample_rate": int(codec.sample_rate),
        "hop_length": int(codec.hop_length),
        "codebook_size": int(codec.codebook_size),
        "length": length,
    }


def encode_file(codec, identity: str, spec: str, where: str, out: Path, n_q: int) -> int:
    """Encode one audio file (converted to the codec's rate and mono) to ``out``.

    Returns:
        int: bytes written.

    Raises:
        AudioError: unreadable input; BitstreamError: cannot write.
    """
    return encode_files(codec, identity, [(spec, where, out)], n_q)


def encode_files(codec, identity: str, jobs: list[tuple], n_q: int, batch_size: int = 1) -> int:
    """Encode ``(spec, where, out)`` jobs, ``batch_size`` files per forward at most.

    Returns:
        int: bytes written.

    Raises:
        AudioError: unreadable input; BitstreamError: cannot write.
    """
    device = next(codec.parameters()).device
    min_frames = mixed_length_min_frames(codec)
    total = 0
    for first in range(0, len(jobs), READ_AHEAD * batch_size):
        window = jobs[first : first + READ_AHEAD * batch_size]
        wavs = [read_for_codec(codec, spec, where) for spec, where, _ in window]
        frames = [math.ceil(len(x) / codec.hop_length) for x in wavs]
        for batch in plan_batches(frames, batch_size, min_frames):
            xs = [torch.from_numpy(wavs[i]).to(device) for i in batch]  # (T_i,)
            for i, codes in zip(batch, encode_batch(codec, xs, n_q)):  # (K', F_i)
                header = _header(codec, identity, len(wavs[i]))
                total += write_bitstream(window[i][2], codes.cpu().numpy(), header)
    return total


def decode_file(codec, identity: str, path: str, out: Path, subtype: str = "PCM_16") -> int:
    """Decode one ``.ctk`` file to a WAV of the original length at the codec's rate.

    Returns:
        int: samples written.

    Raises:
        BitstreamError: unreadable/corrupt file, or one encoded with another model.
    """
    return decode_files(codec, identity, [(path, out)], subtype)


def _read_ctk(identity: str, codec, path: str):
    header, codes = read_bitstream(path)
    if header["model_id"] != identity:
        raise BitstreamError(
            f"{path}: encoded with model {header['model_id']} ({header['codec']}), but the "
            f"given model is {identity} ({type(codec).__name__}); decode with the same model"
        )
    return header, codes


def decode_files(
    codec, identity: str, jobs: list[tuple], subtype: str = "PCM_16", batch_size: int = 1
) -> int:
    """Decode ``(path, out)`` jobs, ``batch_size`` files per forward at most.

    Returns:
        int: samples written.

    Raises:
        BitstreamError: unreadable/corrupt file, or one encoded with another model.
    """
    device = next(codec.parameters()).device
    min_frames = mixed_length_min_frames(codec)
    total = 0
    for first in range(0, len(jobs), READ_AHEAD * batch_size):
        window = jobs[first : first + READ_AHEAD * batch_size]
        read = [_read_ctk(identity, codec, path) for path, _ in window]
        frames = [codes.shape[-1] for _, codes in read]
        for batch in plan_batches(frames, batch_size, min_frames):
            codes = [torch.from_numpy(read[i][1]).to(device) for i in batch]  # (K', F_i)
            for i, y in zip(batch, decode_batch(codec, codes)):  # (F_i * hop,)
                y = y[: read[i][0]["length"]].float().cpu().numpy()
                write_audio(window[i][1], y, codec.sample_rate, subtype=subtype)
                total += len(y)
    return total


def describe(path: str) -> dict:
    """Header of a ``.ctk`` file plus ``duration`` (s), ``bitrate_kbps`` (nominal) and
    ``file_bitrate_kbps`` (file size x 8 / duration).

    Raises:
        BitstreamError: unreadable or corrupt file.
    """
    header, _ = read_bitstream(path)
    duration = header["length"] / header["sample_rate"]
    size = Path(path).stat().st_size
    return {
        **header,
        "bytes": size,
        "duration": duration,
        "bitrate_kbps": nominal_bitrate(header),
        "file_bitrate_kbps": size * 8 / duration / 1000 if duration else float("nan"),
    }
