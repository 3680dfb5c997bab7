"""LibriSpeech-layout corpora as Kaldi data directories.

Layout (one real path and line)::

    LibriSpeech/train-clean-100/103/1240/103-1240-0000.flac
    LibriSpeech/train-clean-100/103/1240/103-1240.trans.txt
        103-1240-0000 CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED ...
    LibriSpeech/SPEAKERS.TXT
        103  | F | train-clean-100  | 23.00 | Karen Savage

Transcripts are optional (codecs need none): a chapter without ``*.trans.txt`` still
yields its audio. Utterance ids are ``<speaker>-<chapter>-<utt>``, so the speaker id
prefixes them as Kaldi requires.

Corpus: V. Panayotov et al., "LibriSpeech: an ASR corpus based on public domain audio
books", ICASSP 2015 (OpenSLR 12), licence CC BY 4.0.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from codectk.datadir import DataDirError, utt2spk_to_spk2utt, write_scp

log = logging.getLogger(__name__)


def read_speakers(speakers_txt: str | os.PathLike) -> dict[str, str]:
    """Read ``SPEAKERS.TXT``: speaker id -> gender (``f``/``m``). Missing file: empty."""
    path = Path(speakers_txt)
    if not path.is_file():
        log.warning("%s not found: spk2gender will not be written", path)
        return {}
    genders = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(";") or not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[1] in ("F", "M"):
            genders[fields[0]] = fields[1].lower()
    return genders


def prepare_librispeech_dir(
    corpus_dir: str | os.PathLike, parts: list[str], out_dir: str | os.PathLike
) -> int:
    """Write a Kaldi data dir (wav.scp, utt2spk, spk2utt, spk2gender, text if any).

    Args:
        corpus_dir: folder holding ``LibriSpeech/`` (or the ``LibriSpeech`` folder itself).
        parts (list[str]): subsets, e.g. ``["train-clean-100"]``.
        out_dir: the data dir to write.

    Returns:
        int: number of utterances.

    Raises:
        DataDirError: no part found or no audio at all.
    """
    root = Path(corpus_dir).resolve()
    if (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    wav, utt2spk, text = {}, {}, {}
    for part in parts:
        part_dir = root / part
        if not part_dir.is_dir():
            log.warning("%s: part not found, skipped", part_dir)
            continue
        for flac in sorted(part_dir.glob("*/*/*.flac")):
            utt = flac.stem
            spk = utt.split("-")[0]
            wav[utt] = str(flac)
            utt2spk[utt] = spk
        for trans in sorted(part_dir.glob("*/*/*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    utt, _, words = line.partition(" ")
                    text[utt] = words
    if not wav:
        raise DataDirError(f"{root}: no .flac files under parts {parts}")
    out = Path(out_dir)
    write_scp(out / "wav.scp", wav)
    write_scp(out / "utt2spk", utt2spk)
    write_scp(out / "spk2utt", {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()})
    genders = read_speakers(root / "SPEAKERS.TXT")
    if genders:
        write_scp(
            out / "spk2gender", {s: genders[s] for s in set(utt2spk.values()) if s in genders}
        )
    if text:
        missing = sorted(set(wav) - set(text))
        if missing:
            log.warning(
                "%d utterances have no transcript (e.g. %s): text not written",
                len(missing),
                missing[0],
            )
        else:
            write_scp(out / "text", text)
    log.info("wrote %s: %d utterances, %d speakers", out, len(wav), len(set(utt2spk.values())))
    return len(wav)
