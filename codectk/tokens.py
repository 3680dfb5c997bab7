"""Discrete tokens of a data directory for TTS and language-model users.

:func:`extract_tokens` encodes every utterance of a ``wav.scp`` with a trained codec and
writes to one folder::

    codes.ark  codes.scp  codes.json   (codectk.io.codes: int32, K x F per utterance)
    tokens.txt                         one token per line: "<symbol> <id>"
    frame_rate                         code frames per second (Hz), one number
    tokens.json                        model, bitrate, K, codebook size, sample rate, hop
    npy/<utt>.npy  npy.scp             with npy=True: int16/int32 arrays (K, F)

Token list: codebook ``k`` (0-based, the first residual stage is 0) and code ``c`` have
the symbol ``c<k>_<c>`` and the flat id ``k * codebook_size + c``, so one vocabulary of
``K * codebook_size`` ids covers every codebook (the offset layout multi-codebook
language models use); :meth:`TokenSet.flat` applies it.

The codes are those stage 6 (``codectk.bin.codec_inference``) writes for the same model, input
and bitrate: ``codec.decode`` of them gives stage 6's waveform.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codectk.errors import check_choice
from codectk.io.audio import AudioError, read_audio, to_mono
from codectk.io.codes import read_codes, write_codes
from codectk.io.datadir import read_scp, write_scp
from codectk.io.fileio import atomic_replace_from, atomic_write, read_versioned_json

log = logging.getLogger("codectk.tokens")

TOKENS_FORMAT_VERSION = 1


@dataclass
class TokenSet:
    """Tokens loaded by :func:`load_tokens`.

    Attributes:
        codes (dict[str, np.ndarray]): utt -> codes (K, F), int64.
        n_codebooks (int): K.
        codebook_size (int): entries per codebook.
        frame_rate (float): frames per second (Hz).
        sample_rate (int): the codec's sample rate (Hz).
        tokens (list[str]): symbols, index = flat id.
    """

    codes: dict[str, np.ndarray]
    n_codebooks: int
    codebook_size: int
    frame_rate: float
    sample_rate: int
    tokens: list[str]

    def flat(self, utt: str) -> np.ndarray:
        """Flat ids of ``utt``, frame-major: shape (F * K,), ``k * codebook_size + c``."""
        c = self.codes[utt]  # (K, F)
        offsets = np.arange(c.shape[0])[:, None] * self.codebook_size  # (K, 1)
        return (c + offsets).T.reshape(-1)  # (K, F) -> (F, K) -> (F * K,)


def token_symbols(n_codebooks: int, codebook_size: int) -> list[str]:
    """Symbols ``c<k>_<c>`` in flat-id order (``k * codebook_size + c``)."""
    return [f"c{k}_{c}" for k in range(n_codebooks) for c in range(codebook_size)]


def extract_tokens(
    codec,
    wav_scp: str | os.PathLike,
    out_dir: str | os.PathLike,
    n_quantizers: int | None = None,
    npy: bool = False,
    device: str = "cpu",
    model_name: str = "",
) -> dict:
    """Encode every utterance of ``wav_scp`` and write the token folder (module docstring).

    Args:
        codec (codectk.models.Codec): a loaded codec in eval mode.
        wav_scp: Kaldi ``wav.scp`` at the codec's sample rate.
        out_dir: output folder.
        n_quantizers (int | None): codebooks to keep (None: all).
        npy (bool): also write ``npy/<utt>.npy`` and ``npy.scp``.
        device (str): torch device.
        model_name (str): recorded in ``tokens.json``.

    Returns:
        dict: the content of ``tokens.json``.

    Raises:
        codectk.io.audio.AudioError: unreadable audio or a sample rate other than the codec's,
            naming ``wav_scp:line``.
    """
    out = Path(out_dir)
    n_q = n_quantizers or codec.n_codebooks
    table = read_scp(wav_scp)
    codes: dict[str, np.ndarray] = {}
    frames = 0
    with torch.inference_mode():
        for i, (utt, spec) in enumerate(table.items(), 1):
            where = f"{wav_scp}:{i}"
            wav, fs = read_audio(spec, where)
            if fs != codec.sample_rate:
                raise AudioError(
                    f"{spec} ({where}) is {fs} Hz; the codec expects {codec.sample_rate} Hz"
                )
            x = torch.from_numpy(to_mono(wav))[None, None, :].to(device)  # (T,) -> (1, 1, T)
            c = codec.encode(x, n_q)[0].cpu().numpy().astype(np.int64)  # (K, F)
            codes[utt] = c
            frames += c.shape[1]
    write_codes(out / "codes", codes, codec.codebook_size, codec.frame_rate, codec.sample_rate)
    symbols = token_symbols(n_q, codec.codebook_size)
    with atomic_write(out / "tokens.txt") as f:
        f.writelines(f"{s} {i}\n" for i, s in enumerate(symbols))
    with atomic_write(out / "frame_rate") as f:
        f.write(f"{codec.frame_rate:g}\n")
    if npy:
        dtype = np.int16 if codec.codebook_size <= 2**15 else np.int32
        paths = {}
        for utt, c in codes.items():
            path = (out / "npy" / f"{utt}.npy").resolve()
            arr = c.astype(dtype)
            atomic_replace_from(lambda tmp, arr=arr: _save_npy(tmp, arr), path)
            paths[utt] = str(path)
        write_scp(out / "npy.scp", paths)
    meta = {
        "format_version": TOKENS_FORMAT_VERSION,
        "model": model_name,
        "n_codebooks": n_q,
        "codebook_size": int(codec.codebook_size),
        "vocab_size": len(symbols),
        "frame_rate": float(codec.frame_rate),
        "sample_rate": int(codec.sample_rate),
        "hop_length": int(codec.hop_length),
        "bitrate_kbps": float(codec.bitrate(n_q)),
        "n_utts": len(codes),
        "n_frames": frames,
        "wav_scp": str(wav_scp),
        "npy": bool(npy),
    }
    with atomic_write(out / "tokens.json") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)


def load_tokens(token_dir: str | os.PathLike, fmt: str = "ark") -> TokenSet:
    """Load a folder written by :func:`extract_tokens`.

    Args:
        token_dir: the folder.
        fmt (str): ``"ark"`` (codes.scp) or ``"npy"`` (npy.scp).

    Returns:
        TokenSet: codes (K, F) per utterance plus the codec facts.

    Raises:
        ValueError: a missing file, an unsupported format version, an unknown ``fmt``,
            or a token list that does not match ``tokens.json``.
    """
    check_choice("fmt", fmt, ("ark", "npy"))
    d = Path(token_dir)
    meta = read_versioned_json(
        d / "tokens.json",
        "token",
        TOKENS_FORMAT_VERSION,
        "not a token folder from extract_tokens",
    )
    if fmt == "ark":
        codes = read_codes(d / "codes.scp")
    else:
        codes = {
            u: np.load(p, allow_pickle=False).astype(np.int64)
            for u, p in read_scp(d / "npy.scp").items()
        }
    tokens = [line.split()[0] for line in (d / "tokens.txt").read_text().splitlines()]
    if len(tokens) != meta["vocab_size"]:
        raise ValueError(
            f"{d / 'tokens.txt'}: {len(tokens)} tokens, tokens.json says {meta['vocab_size']}"
        )
    return TokenSet(
        codes=codes,
        n_codebooks=meta["n_codebooks"],
        codebook_size=meta["codebook_size"],
        frame_rate=meta["frame_rate"],
        sample_rate=meta["sample_rate"],
        tokens=tokens,
    )


def decode_tokens(codec, codes: Mapping[str, np.ndarray], device: str = "cpu") -> dict:
    """Decode token codes back to waveforms: utt -> float32 (T',) at ``codec.sample_rate``."""
    out = {}
    with torch.inference_mode():
        for utt, c in codes.items():
            y = codec.decode(
                torch.from_numpy(np.asarray(c, np.int64))[None].to(device)
            )  # (1, 1, T')
            out[utt] = y[0, 0].float().cpu().numpy()
    return out
