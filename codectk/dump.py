"""Stage 2's wav dump (``python -m codectk.bin.dump_wav``): the audio of a ``wav.scp`` as
mono 16-bit PCM WAV at one sample rate, with ``wav.scp`` and ``utt2num_samples`` lists.

Idempotent: an utterance whose output WAV exists with the expected header is not
re-encoded. An unreadable file stops the dump with the file and ``wav.scp`` line named,
or with ``on_error="skip"`` is listed with the reason in ``<out_dir>/dropped``.
Multi-channel files are averaged to mono; clipped and silent files are dumped with a
warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from codectk.errors import check_choice
from codectk.io.audio import AudioError, read_audio, resample, to_mono, write_audio
from codectk.io.datadir import DataDirError, read_scp, write_scp

log = logging.getLogger("codectk.dump_wav")

ON_ERROR = ("stop", "skip")


def dump_wav_scp(
    in_scp: str | os.PathLike,
    fs: int,
    out_wav_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    on_error: str = "stop",
) -> dict[str, int]:
    """Dump every utterance of ``in_scp`` to ``<out_wav_dir>/<utt>.wav`` and write
    ``<out_dir>/{wav.scp,utt2num_samples,dropped}``.

    Args:
        in_scp: a ``wav.scp`` (paths or ``<command> |`` pipes).
        fs (int): output sample rate (Hz).
        out_wav_dir: folder for the WAV files.
        out_dir: folder for the lists.
        on_error (str): ``stop`` (raise on an unreadable file) or ``skip`` (list it in
            ``<out_dir>/dropped``).

    Returns:
        dict[str, int]: utterances ``written`` and ``dropped``, and how many were
        ``resampled``, ``reused`` (dumped before), ``downmixed``, ``clipped``, ``silent``.

    Raises:
        DataDirError: an utterance id with ``/`` (it names a file).
        AudioError: an unreadable file, with ``on_error="stop"``.
        ValueError: an unknown ``on_error``.
    """
    check_choice("on_error", on_error, ON_ERROR)
    table = read_scp(in_scp)
    wav_dir = Path(out_wav_dir).resolve()
    out_wav, lens, dropped = {}, {}, {}
    counts = {"resampled": 0, "reused": 0, "downmixed": 0, "clipped": 0, "silent": 0}
    for lineno, (utt, spec) in enumerate(table.items(), 1):
        where = f"{in_scp}:{lineno}"
        if "/" in utt:
            raise DataDirError(f"{where}: utterance id {utt!r} contains '/'")
        dst = wav_dir / f"{utt}.wav"
        if _already_dumped(dst, fs):
            out_wav[utt], lens[utt] = str(dst), sf.info(str(dst)).frames
            counts["reused"] += 1
            continue
        for stale in wav_dir.glob(f".{utt}.*.wav"):  # left by a killed earlier run
            stale.unlink(missing_ok=True)
        try:
            wav, fs_in = read_audio(spec, where=where)
        except AudioError as exc:
            if on_error == "stop":
                raise
            log.warning("skipped: %s", exc)
            dropped[utt] = str(exc).replace("\n", " ")
            continue
        counts["downmixed"] += wav.shape[0] > 1
        mono = to_mono(wav)
        peak = float(np.abs(mono).max())
        if peak >= 0.999:
            counts["clipped"] += 1
            log.warning("%s (%s) reaches full scale (peak %.3f): clipped?", spec, where, peak)
        elif peak == 0.0:
            counts["silent"] += 1
            log.warning("%s (%s) is all zeros", spec, where)
        if fs_in != fs:
            mono = resample(mono, fs_in, fs)
            counts["resampled"] += 1
        write_audio(dst, mono, fs)
        out_wav[utt], lens[utt] = str(dst), len(mono)
    out = Path(out_dir)
    write_scp(out / "wav.scp", out_wav)
    write_scp(out / "utt2num_samples", lens)
    write_scp(out / "dropped", dropped)
    log.info(
        "wrote %d utterances to %s (%s); dropped %d (listed in %s); lists in %s",
        len(out_wav),
        wav_dir,
        ", ".join(f"{v} {k}" for k, v in counts.items()),
        len(dropped),
        out / "dropped",
        out,
    )
    return {"written": len(out_wav), "dropped": len(dropped), **counts}


def _already_dumped(path: Path, fs: int) -> bool:
    """True for a complete earlier dump of this utterance (files are written atomically)."""
    if not path.exists():
        return False
    try:
        info = sf.info(str(path))
    except Exception:  # a foreign or damaged file: dump again
        return False
    return info.samplerate == fs and info.channels == 1 and info.frames > 0
