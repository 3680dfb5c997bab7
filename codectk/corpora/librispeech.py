"""LibriSpeech as Kaldi data directories, through lhotse's ``prepare_librispeech``.

Layout (one real path and line)::

    LibriSpeech/train-clean-100/103/1240/103-1240-0000.flac      <part>/<spk>/<chapter>/
    LibriSpeech/train-clean-100/103/1240/103-1240.trans.txt
        103-1240-0000 CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED ...
    LibriSpeech/SPEAKERS.TXT
        103  | F | train-clean-100  | 23.72 | Karen Savage

16 kHz mono FLAC. Parts: train-clean-100, train-clean-360, train-other-500, dev-clean,
dev-other, test-clean, test-other (and mini_librispeech's train-clean-5, dev-clean-2).
Utterance ids are the file names, ``<speaker>-<chapter>-<utt>``: the speaker id prefixes
them and sorts like them, as Kaldi requires.

What codectk adds to lhotse: only the parts on disk are passed to it; unreadable audio
and transcript lines without text are hidden from it (it would stop at the first one)
and named in warnings; audio without a transcript line, which lhotse skips, is kept with
an empty ``text`` and a warning (codecs need no text); a part without any transcript,
on which lhotse fails, is read without it; genders come from ``SPEAKERS.TXT``, which
lhotse does not read.

Corpus: V. Panayotov, G. Chen, D. Povey, S. Khudanpur, "LibriSpeech: an ASR corpus based
on public domain audio books", ICASSP 2015 (OpenSLR 12). Licence: CC BY 4.0.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from codectk.corpora.common import (
    LIBRI_PARTS,
    CorpusError,
    Utterance,
    add_untranscribed,
    check_parts,
    ensure_parts,
    lhotse_part,
    libri_part_audio,
    libri_root,
    prepare_parts,
    probe_audio,
    read_libri_speakers,
    write_data_dir,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
PARTS = LIBRI_PARTS + ("train-clean-5", "dev-clean-2")
_UTT = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def librispeech_root(corpus_dir: str | os.PathLike) -> Path:
    """The folder holding the parts: ``<corpus_dir>/LibriSpeech`` or ``corpus_dir``."""
    return libri_root(corpus_dir, "LibriSpeech")


def download_librispeech(corpus_dir: str | os.PathLike, parts: Sequence[str]) -> None:
    """Download the ``parts`` missing under ``corpus_dir`` with lhotse (see
    :func:`codectk.corpora.common.ensure_parts`); parts on disk never touch the network."""
    root = librispeech_root(corpus_dir)
    _check_parts(parts)

    def fetch(need: list[str]) -> None:
        from lhotse.recipes import librispeech as lhotse_librispeech

        if root.name != "LibriSpeech":
            raise CorpusError(f"{root}: lhotse downloads into a folder named LibriSpeech")
        lhotse_librispeech.download_librispeech(root.parent, dataset_parts=need)

    ensure_parts(root, parts, fetch, "LibriSpeech")


def librispeech_utterances(
    corpus_dir: str | os.PathLike, part: str, nj: int = 1
) -> dict[str, Utterance]:
    """The utterances of one part: lhotse's, plus the audio it skips for want of text.

    Args:
        corpus_dir: folder holding ``LibriSpeech/`` (or that folder).
        part (str): e.g. ``"train-clean-100"``.
        nj (int): threads for header reading and for lhotse.

    Returns:
        dict: utterance id -> :class:`~codectk.corpora.common.Utterance`; empty (with a
        warning) for a part without audio.
    """
    root = librispeech_root(corpus_dir)
    part_dir = root / part
    files = libri_part_audio(
        part_dir, "flac", _UTT, "<part>/<spk>/<chapter>/<spk>-<chapter>-<n>.flac"
    )
    if not files:
        return {}
    audio, bad = probe_audio(files, SAMPLE_RATE, nj)
    utts: dict[str, Utterance] = {}
    if audio and any(part_dir.glob("*/*/*.trans.txt")):
        from lhotse.recipes import librispeech as lhotse_librispeech

        utts = lhotse_part(
            lhotse_librispeech.prepare_librispeech,
            root,
            part,
            audio,
            bad,
            _transcript_fixes(part_dir),
            nj,
        )
    add_untranscribed(
        utts,
        audio,
        f"audio files in {part_dir} have no transcript line (lhotse skips them; kept, no text)",
        lambda stem: _UTT.match(stem)[1],
    )
    return utts


def _transcript_fixes(part_dir: Path) -> dict[Path, str]:
    """``trans.txt`` files with lines lhotse cannot split into ``<id> <text>`` (it would
    stop on them) -> their other lines; each dropped line is a warning naming it."""
    fixes = {}
    for trans in sorted(part_dir.glob("*/*/*.trans.txt")):
        lines = trans.read_text(encoding="utf-8").splitlines()
        good = []
        for lineno, line in enumerate(lines, 1):
            if len(line.split(maxsplit=1)) == 2:
                good.append(line)
            else:
                log.warning("%s:%d: not '<id> <text>': %r (skipped)", trans, lineno, line)
        if len(good) < len(lines):
            fixes[trans] = "".join(f"{line}\n" for line in good)
    return fixes


def prepare_librispeech(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    parts: Sequence[str] | None = None,
    nj: int = 1,
) -> dict[str, int]:
    """Write one Kaldi data dir per part, ``<out_dir>/<part>``.

    Args:
        corpus_dir: folder holding ``LibriSpeech/`` (or that folder).
        out_dir: parent of the data dirs (e.g. ``data``).
        parts: part names; None: every part on disk (lhotse's "all" fails on a partial
            corpus). A part not on disk or without audio is a warning and a skip.
        nj (int): threads for header reading and for lhotse.

    Returns:
        dict: part -> utterances written, for the parts written.

    Raises:
        CorpusError: no part on disk, or a data dir that does not validate.
        ValueError: an unknown part name.
    """
    root = librispeech_root(corpus_dir)
    return prepare_parts(
        root,
        out_dir,
        parts,
        PARTS,
        lambda part: librispeech_utterances(root, part, nj),
        read_libri_speakers(root / "SPEAKERS.TXT"),
        "LibriSpeech",
    )


def prepare_librispeech_dir(
    corpus_dir: str | os.PathLike, parts: Sequence[str], out_dir: str | os.PathLike
) -> int:
    """Write the union of ``parts`` as one data dir (the mini_librispeech recipe's use).

    Returns:
        int: number of utterances.

    Raises:
        CorpusError: none of the parts holds audio.
    """
    root = librispeech_root(corpus_dir)
    _check_parts(parts)
    utts: dict[str, Utterance] = {}
    for part in parts:
        utts.update(librispeech_utterances(root, part))
    if not utts:
        raise CorpusError(f"{root}: no .flac files under parts {list(parts)}")
    return write_data_dir(out_dir, utts, read_libri_speakers(root / "SPEAKERS.TXT"))


def _check_parts(parts: Sequence[str]) -> None:
    check_parts(parts, PARTS, "LibriSpeech")
