"""Fixture corpora in the official layouts of LibriSpeech, LibriTTS and VCTK, built from
real speech inside the repository: the bundled LibriSpeech FLACs (16 kHz) of
``egs/mini_librispeech/codec1/corpus`` and the two VCTK clips of ``test/data/vctk``
(16 kHz). Audio is cut into short segments and resampled to the corpus's rate;
transcripts are made up (the sources have none).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf

from codectk.io.audio import resample

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "egs" / "mini_librispeech" / "codec1" / "corpus" / "LibriSpeech"
VCTK_CLIPS = REPO / "test" / "data" / "vctk" / "wav16"
SEGMENT = 1.2  # seconds per fixture utterance
WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()


@functools.cache
def _speech(path: str) -> tuple[np.ndarray, int]:
    wav, fs = sf.read(path, dtype="float32")
    return wav, fs


def speech(source: Path, k: int, fs_out: int, seconds: float = SEGMENT) -> np.ndarray:
    """The ``k``-th ``seconds``-long segment of a real recording, at ``fs_out`` Hz, (T,)."""
    wav, fs = _speech(str(source))
    n = int(seconds * fs)
    starts = range(int(0.3 * fs), len(wav) - n, int(1.3 * fs))
    start = list(starts)[k % len(starts)]
    return resample(wav[start : start + n], fs, fs_out)


def made_up(spk: str, k: int) -> str:
    """A made-up transcript, upper case as LibriSpeech's."""
    return f"SPEAKER {' '.join(WORDS[int(c)] for c in spk if c.isdigit())} SAYS {WORDS[k % 10]}"


def mini_speakers() -> dict[str, tuple[str, Path]]:
    """Bundled LibriSpeech speaker id -> (chapter id, its FLAC), by speaker id."""
    out = {}
    for f in sorted(MINI.glob("train-clean-100/*/*/*.flac")):
        out[f.parent.parent.name] = (f.parent.name, f)
    return out


def _speakers_header(name: str) -> str:
    return f"; {name} speakers (fixture)\n;ID  |SEX| SUBSET           |MINUTES| NAME\n"


def _genders() -> dict[str, str]:
    out = {}
    for line in (MINI / "SPEAKERS.TXT").read_text().splitlines():
        fields = [f.strip() for f in line.split("|")]
        if not line.startswith(";") and len(fields) > 2:
            out[fields[0]] = fields[1]
    return out


def build_librispeech(root: Path, parts: dict[str, list[str]], n_utts: int = 2) -> Path:
    """``<root>/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac`` (16 kHz) with
    ``<spk>-<chapter>.trans.txt``, and ``SPEAKERS.TXT``.

    Args:
        root: the folder to hold ``LibriSpeech/``.
        parts: part -> bundled speaker ids.
        n_utts: utterances per speaker (one chapter each).

    Returns:
        Path: ``<root>/LibriSpeech``.
    """
    corpus = root / "LibriSpeech"
    chapters = mini_speakers()
    genders = _genders()
    speakers = _speakers_header("LibriSpeech")
    for part, spks in parts.items():
        (corpus / part).mkdir(parents=True, exist_ok=True)
        for spk in spks:
            chapter, src = chapters[spk]
            d = corpus / part / spk / chapter
            d.mkdir(parents=True)
            lines = []
            for k in range(n_utts):
                utt = f"{spk}-{chapter}-{k:04d}"
                sf.write(d / f"{utt}.flac", speech(src, k, 16000), 16000, subtype="PCM_16")
                lines.append(f"{utt} {made_up(spk, k)}\n")
            (d / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))
            speakers += f"{spk:<5}| {genders[spk]} | {part:<16} | 25.00 | Reader {spk}\n"
    (corpus / "SPEAKERS.TXT").write_text(speakers)
    return corpus


def build_libritts(
    root: Path, parts: dict[str, list[str]], n_utts: int = 2, name: str = "LibriTTS"
) -> Path:
    """``<root>/<name>/<part>/<spk>/<chapter>/<spk>_<chapter>_<p>_<s>.wav`` (24 kHz) with
    ``.normalized.txt``, ``.original.txt``, ``<spk>_<chapter>.trans.tsv`` and
    ``.book.tsv``, and ``SPEAKERS.txt``.

    Returns:
        Path: ``<root>/<name>``.
    """
    corpus = root / name
    chapters = mini_speakers()
    genders = _genders()
    speakers = _speakers_header(name)
    for part, spks in parts.items():
        (corpus / part).mkdir(parents=True, exist_ok=True)
        for spk in spks:
            chapter, src = chapters[spk]
            d = corpus / part / spk / chapter
            d.mkdir(parents=True)
            trans, book = [], []
            for k in range(n_utts):
                utt = f"{spk}_{chapter}_{k + 3:06d}_{k % 2:06d}"
                sf.write(d / f"{utt}.wav", speech(src, k, 24000), 24000, subtype="PCM_16")
                original = made_up(spk, k).capitalize() + "!"
                normalized = made_up(spk, k).capitalize() + "."
                (d / f"{utt}.original.txt").write_text(original)
                (d / f"{utt}.normalized.txt").write_text(normalized)
                trans.append(f"{utt}\t{original}\t{normalized}\n")
                book.append(f"{utt}\t{original}\t{normalized}\ttrue\t{k * 1.3:.2f}\t21.7\n")
            (d / f"{spk}_{chapter}.trans.tsv").write_text("".join(trans))
            (d / f"{spk}_{chapter}.book.tsv").write_text("".join(book))
            speakers += f"{spk:<5}| {genders[spk]} | {part:<16} | 25.00 | Reader {spk}\n"
    (corpus / "SPEAKERS.txt").write_text(speakers)
    return corpus


#: Fixture VCTK speakers: id -> (gender, clip). Real audio of p225 (F) and p226 (M) is
#: reused for the held-out speakers and for the quirks (p280: no mic2, p315: no text).
VCTK_SPEAKERS = {
    "p225": "F",
    "p226": "M",
    "p280": "F",
    "p315": "M",
    "p339": "F",  # valid
    "p360": "M",  # valid
    "p361": "F",  # test
    "p376": "M",  # test
}


def build_vctk(
    root: Path,
    speakers: dict[str, str] | None = None,
    n_utts: int = 2,
    release: str = "0.92",
) -> Path:
    """VCTK in its 0.92 layout (``VCTK-Corpus-0.92/wav48_silence_trimmed/<spk>/
    <spk>_<nnn>_mic{1,2}.flac``) or 0.80 layout (``VCTK-Corpus/wav48/<spk>/<spk>_<nnn>.wav``),
    48 kHz, with ``txt/<spk>/<spk>_<nnn>.txt`` and ``speaker-info.txt``. As in the real
    corpus, p315 has no text and p280 no mic2 audio.

    Returns:
        Path: the corpus folder.
    """
    speakers = VCTK_SPEAKERS if speakers is None else speakers
    corpus = root / ("VCTK-Corpus-0.92" if release == "0.92" else "VCTK-Corpus")
    audio_dir = corpus / ("wav48_silence_trimmed" if release == "0.92" else "wav48")
    info = [
        "ID  AGE  GENDER  ACCENTS  REGION COMMENTS"
        if release == "0.92"
        else "ID  AGE  GENDER  ACCENTS  REGION  "
    ]
    for i, (spk, gender) in enumerate(sorted(speakers.items())):
        clip = VCTK_CLIPS / ("p225/p225_003.wav" if gender == "F" else "p226/p226_003.wav")
        (audio_dir / spk).mkdir(parents=True)
        for k in range(n_utts):
            stem = f"{spk}_{k + 1:03d}"
            wav = speech(clip, k + i, 48000)
            if release == "0.92":
                mics = ("mic1",) if spk == "p280" else ("mic1", "mic2")
                for mic in mics:
                    gain = 1.0 if mic == "mic1" else 0.8
                    sf.write(
                        audio_dir / spk / f"{stem}_{mic}.flac", gain * wav, 48000, subtype="PCM_16"
                    )
            else:
                sf.write(audio_dir / spk / f"{stem}.wav", wav, 48000, subtype="PCM_16")
            if spk != "p315":
                (corpus / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (corpus / "txt" / spk / f"{stem}.txt").write_text(
                    made_up(spk, k).capitalize() + ".\n"
                )
        spk_id = spk if release == "0.92" else spk[1:]
        info.append(f"{spk_id}  2{i}  {gender}    English    Somewhere  Town")
    (corpus / "speaker-info.txt").write_text("\n".join(info) + "\n")
    return corpus
