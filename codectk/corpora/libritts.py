"""LibriTTS and LibriTTS-R as Kaldi data directories, through lhotse's ``prepare_libritts``.

Layout (one real path and line)::

    LibriTTS/dev-clean/84/121123/84_121123_000007_000001.wav     <part>/<spk>/<chapter>/
    LibriTTS/dev-clean/84/121123/84_121123_000007_000001.normalized.txt   (and .original.txt)
    LibriTTS/dev-clean/84/121123/84_121123.trans.tsv   <id> TAB <original> TAB <normalized>
        84_121123_000007_000001	Maximilian.	Maximilian.
    LibriTTS/dev-clean/84/121123/84_121123.book.tsv    (per-sentence metadata, SNR last)
    LibriTTS/SPEAKERS.txt                              ;ID |SEX| SUBSET |MINUTES| NAME

LibriTTS-R has the same layout under ``LibriTTS_R/``. 24 kHz mono 16-bit WAV. Parts as
LibriSpeech's: train-clean-100, train-clean-360, train-other-500, dev-clean, dev-other,
test-clean, test-other. The text is the normalized one.

Utterance ids are the file names with ``_`` turned into ``-``
(``84-121123-000007-000001``): with ``_``, speaker ``19``'s utterances would sort after
speaker ``198``'s, which Kaldi forbids.

lhotse excludes macOS ``._*`` files and ``1092_134562_000013_000004.wav`` (corrupted in a
LibriTTS-R release); so does codectk. What codectk adds: only the parts on disk are passed
to lhotse; unreadable audio is hidden from it (it would stop at the first one) and named
in a warning; a chapter whose ``trans.tsv`` lhotse cannot read (missing ``book.tsv``, a
line without three tab-separated fields) is hidden from it with a warning naming the
file and line; audio that lhotse leaves without a transcript is kept, with the text of
its ``.normalized.txt`` when there is one.

Corpus: H. Zen, V. Dang, R. Clark, Y. Zhang, R. J. Weiss, Y. Jia, Z. Chen, Y. Wu,
"LibriTTS: A Corpus Derived from LibriSpeech for Text-to-Speech", Interspeech 2019
(OpenSLR 60); Y. Koizumi et al., "LibriTTS-R: A Restored Multi-Speaker Text-to-Speech
Corpus", Interspeech 2023 (OpenSLR 141). Licence: CC BY 4.0.
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
    is_junk,
    lhotse_part,
    libri_part_audio,
    libri_root,
    prepare_parts,
    probe_audio,
    read_libri_speakers,
)
from codectk.errors import check_choice

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
PARTS = LIBRI_PARTS
#: Folder names of the two corpora.
VARIANTS = {"libritts": "LibriTTS", "libritts_r": "LibriTTS_R"}
#: Files lhotse 1.33's prepare_libritts excludes by name.
LHOTSE_EXCLUDED = frozenset({"1092_134562_000013_000004.wav"})
_UTT = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)$")


def libritts_root(corpus_dir: str | os.PathLike, variant: str | None = None) -> Path:
    """The folder holding the parts.

    Args:
        corpus_dir: ``LibriTTS/`` or ``LibriTTS_R/``, or a folder holding one of them.
        variant: ``"libritts"`` or ``"libritts_r"``; None: whichever is there (LibriTTS
            when neither is, as for a download).

    Raises:
        CorpusError: ``corpus_dir`` holds both and ``variant`` is None.
        ValueError: an unknown variant.
    """
    d = Path(corpus_dir)
    if variant is None:
        found = [v for v, name in VARIANTS.items() if (d / name).is_dir()]
        if len(found) > 1:
            raise CorpusError(f"{d} holds both LibriTTS and LibriTTS_R: choose one (--variant)")
        variant = found[0] if found else "libritts"
    check_choice("LibriTTS variant", variant, VARIANTS)
    return libri_root(d, VARIANTS[variant])


def download_libritts(
    corpus_dir: str | os.PathLike, parts: Sequence[str], variant: str | None = None
) -> None:
    """Download the ``parts`` missing under ``corpus_dir`` with lhotse (see
    :func:`codectk.corpora.common.ensure_parts`); parts on disk never touch the network.

    Args:
        corpus_dir: see :func:`libritts_root`.
        parts: part names.
        variant: see :func:`libritts_root`.
    """
    root = libritts_root(corpus_dir, variant)
    _check_parts(parts)

    def fetch(need: list[str]) -> None:
        from lhotse.recipes import libritts as lhotse_libritts

        if root.name not in VARIANTS.values():
            raise CorpusError(
                f"{root}: lhotse downloads into a folder named LibriTTS or LibriTTS_R"
            )
        lhotse_libritts.download_libritts(
            root.parent, use_librittsr=root.name == "LibriTTS_R", dataset_parts=need
        )

    ensure_parts(root, parts, fetch, _corpus_name(root))


def _corpus_name(root: Path) -> str:
    """The corpus name in messages: ``root``'s (LibriTTS or LibriTTS_R), else LibriTTS (the
    parts lie in a folder of another name)."""
    return root.name if root.name in VARIANTS.values() else "LibriTTS"


def _transcript_problem(trans: Path) -> str | None:
    """Why lhotse could not read a chapter's ``trans.tsv`` (and ``book.tsv``), or None."""
    book = trans.with_name(trans.name.replace(".trans.tsv", ".book.tsv"))
    if not book.is_file():
        return f"{book} is missing"
    for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
        if len(line.split("\t")) != 3:
            return f"{trans}:{lineno}: not <id> TAB <original> TAB <normalized>: {line!r}"
    for lineno, line in enumerate(book.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) < 2 or not _is_float(fields[-1]):
            return f"{book}:{lineno}: the last field is not a number (SNR): {line!r}"
    return None


def _unreadable_transcripts(part_dir: Path) -> list[Path]:
    """The ``trans.tsv`` files that would stop lhotse, each named in a warning."""
    bad = []
    for trans in sorted(part_dir.glob("*/*/*.trans.tsv")):
        problem = None if is_junk(trans) else _transcript_problem(trans)
        if problem is not None:
            log.warning("%s; chapter %s is read without lhotse", problem, trans.parent)
            bad.append(trans)
    return bad


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def libritts_utterances(
    corpus_dir: str | os.PathLike, part: str, nj: int = 1, variant: str | None = None
) -> dict[str, Utterance]:
    """The utterances of one part: lhotse's, plus the audio it leaves without text.

    Args:
        corpus_dir: see :func:`libritts_root`.
        part (str): e.g. ``"dev-clean"``.
        nj (int): threads for header reading, processes for lhotse.
        variant: see :func:`libritts_root`.

    Returns:
        dict: utterance id -> :class:`~codectk.corpora.common.Utterance`; empty (with a
        warning) for a part without audio.
    """
    root = libritts_root(corpus_dir, variant)
    part_dir = root / part
    files = libri_part_audio(
        part_dir,
        "wav",
        _UTT,
        "<part>/<spk>/<chapter>/<spk>_<chapter>_<p>_<s>.wav",
        LHOTSE_EXCLUDED,
    )
    if not files:
        return {}
    audio, bad = probe_audio(files, SAMPLE_RATE, nj)
    hidden = list(bad) + _unreadable_transcripts(part_dir)
    utts: dict[str, Utterance] = {}
    if audio and any(p not in hidden for p in part_dir.glob("*/*/*.trans.tsv")):
        from lhotse.recipes import libritts as lhotse_libritts

        utts = lhotse_part(
            lhotse_libritts.prepare_libritts, root, part, audio, hidden, nj=nj, utt_id=_utt_id
        )
    add_untranscribed(
        utts,
        audio,
        f"audio files in {part_dir} have no trans.tsv line lhotse could use "
        "(kept, text from .normalized.txt if any)",
        lambda stem: stem.split("_")[0],
        _utt_id,
        _normalized_text,
    )
    return utts


def prepare_libritts(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    parts: Sequence[str] | None = None,
    nj: int = 1,
    variant: str | None = None,
) -> dict[str, int]:
    """Write one Kaldi data dir per part, ``<out_dir>/<part>``.

    Args:
        corpus_dir: see :func:`libritts_root`.
        out_dir: parent of the data dirs (e.g. ``data``).
        parts: part names; None: every part on disk (lhotse's "all" fails on a partial
            corpus). A part not on disk or without audio is a warning and a skip.
        nj (int): threads for header reading, processes for lhotse.
        variant: see :func:`libritts_root`.

    Returns:
        dict: part -> utterances written, for the parts written.

    Raises:
        CorpusError: no part on disk, or a data dir that does not validate.
        ValueError: an unknown part name.
    """
    root = libritts_root(corpus_dir, variant)
    return prepare_parts(
        root,
        out_dir,
        parts,
        PARTS,
        lambda part: libritts_utterances(root, part, nj),
        read_libri_speakers(root / "SPEAKERS.txt"),
        _corpus_name(root),
    )


def _normalized_text(wav: Path) -> str | None:
    """The text of ``<utt>.normalized.txt`` beside ``wav``, or None."""
    norm = wav.with_suffix(".normalized.txt")
    text = " ".join(norm.read_text(encoding="utf-8").split()) if norm.is_file() else None
    return text or None


def _utt_id(rec_id: str) -> str:
    return rec_id.replace("_", "-")


def _check_parts(parts: Sequence[str]) -> None:
    check_parts(parts, PARTS, "LibriTTS")
