"""CSTR VCTK as Kaldi data directories, through lhotse's ``prepare_vctk``.

Layout of release 0.92 (Edinburgh DataShare, 2019; one real path and line)::

    VCTK-Corpus-0.92/wav48_silence_trimmed/p225/p225_001_mic1.flac   (and _mic2.flac)
    VCTK-Corpus-0.92/txt/p225/p225_001.txt
        Please call Stella.
    VCTK-Corpus-0.92/speaker-info.txt
        p225  23  F    English    Southern  England

Release 0.80 (2012): ``VCTK-Corpus/wav48/p225/p225_001.wav``, one microphone, and
``speaker-info.txt`` ids without the ``p`` (``225  23  F ...``). 48 kHz mono 16-bit.
0.92 has 110 speakers (0.80: 109): p315 has no text, p280 no mic2 audio, p362 lacks
some audio files; lhotse knows these.

Utterance ids are lhotse's recording ids, the file names (``p225_001_mic1``); all
speaker ids have the same length, so they sort like their utterances (Kaldi).

What codectk adds to lhotse: the release is told from the folders (0.92 when
``wav48_silence_trimmed/`` exists, which selects 0.92's speaker-info format); lhotse
reads only the chosen microphone's files (half the headers); unreadable audio and
transcripts without audio are hidden from it (it would stop on them) and named in a
warning; malformed ``speaker-info.txt`` lines are dropped with a warning naming the line;
audio without a transcript (all of p315) is kept with an empty text and a warning (codecs
need no text); genders come from ``speaker-info.txt`` for every speaker.

Standard split (:func:`split_vctk`): held-out speakers for test and validation, the
rest for training; see :data:`TEST_SPEAKERS` and :data:`VALID_SPEAKERS`.

Corpus: C. Veaux, J. Yamagishi, K. MacDonald, "CSTR VCTK Corpus: English Multi-speaker
Corpus for CSTR Voice Cloning Toolkit (version 0.92)", University of Edinburgh, 2019,
https://doi.org/10.7488/ds/2645. Licence: CC BY 4.0.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from codectk.corpora.common import (
    CorpusError,
    Utterance,
    add_untranscribed,
    check_data_dir,
    download_errors,
    from_lhotse,
    is_junk,
    lhotse_view,
    probe_audio,
    warn_many,
    write_data_dir,
)
from codectk.errors import check_choice
from codectk.io.datadir import read_scp, subset_data_dir
from codectk.io.fileio import atomic_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
MICS = ("mic1", "mic2")
#: Held-out test speakers: the four highest-numbered female (p361 p351 p343 p341) and male
#: (p376 p374 p364 p363) speakers with text and both microphones in both releases
#: (p362 lacks audio files; s5 is not in 0.80).
TEST_SPEAKERS = ("p341", "p343", "p351", "p361", "p363", "p364", "p374", "p376")
#: Held-out validation speakers: the next two female (p340 p339) and male (p360 p347).
VALID_SPEAKERS = ("p339", "p340", "p347", "p360")
ARCHIVE_092 = "VCTK-Corpus-0.92"
_UTT_092 = re.compile(r"^([ps]\d+)_(\d+)_(mic[12])$")
_UTT_080 = re.compile(r"^([ps]\d+)_(\d+)$")


def vctk_root(corpus_dir: str | os.PathLike) -> Path | None:
    """The folder holding ``wav48_silence_trimmed/`` (0.92) or ``wav48/`` (0.80):
    ``corpus_dir`` or its ``VCTK-Corpus-0.92/``, ``VCTK-Corpus/`` subfolder; None if none."""
    d = Path(corpus_dir).absolute()
    for c in (d, d / ARCHIVE_092, d / "VCTK-Corpus", d / ARCHIVE_092 / ARCHIVE_092):
        if (c / "wav48_silence_trimmed").is_dir() or (c / "wav48").is_dir():
            return c
    return None


def download_vctk(corpus_dir: str | os.PathLike) -> Path:
    """Make sure VCTK is under ``corpus_dir``; if not, download 0.92 with lhotse.

    The corpus on disk (any release, any of the folders :func:`vctk_root` accepts) never
    touches the network. A download goes to ``<corpus_dir>/VCTK-Corpus-0.92/`` (about
    11 GB); ``.completed`` marks it finished, and without it (with the zip still there)
    the download resumes and the extraction is redone.

    Returns:
        Path: the corpus folder.
    """
    target = Path(corpus_dir).absolute() / ARCHIVE_092
    archive = target / f"{ARCHIVE_092}.zip"
    interrupted = archive.exists() and not (target / ".completed").exists()
    root = vctk_root(corpus_dir)
    if root is not None and not interrupted:
        return root
    from lhotse.recipes import vctk as lhotse_vctk

    log.info(
        "VCTK %s into %s with lhotse (Edinburgh DataShare, about 11 GB; an interrupted "
        "download resumes when this is run again)",
        "not found: downloading 0.92"
        if root is None
        else f"download was interrupted (no {target / '.completed'}): resuming",
        target,
    )
    with download_errors("VCTK 0.92", target):
        try:
            lhotse_vctk.download_vctk(target, use_edinburgh_vctk_url=True)
        except FileNotFoundError as exc:
            # lhotse touches <target>/VCTK-Corpus-0.92/.completed, a folder the 0.92 zip,
            # whose files have no top-level folder, does not create.
            if not (target / "speaker-info.txt").is_file():
                raise
            log.info("extracted into %s (%s)", target, exc)
    root = vctk_root(corpus_dir)
    if root is None:
        raise CorpusError(f"{target}: no wav48_silence_trimmed/ after the download")
    (target / ".completed").touch()
    return root


def read_speaker_info(path: Path) -> dict[str, str]:
    """Read ``speaker-info.txt`` (either release): speaker id (``p225``) -> ``f``/``m``.

    Lines that are not ``ID AGE GENDER ACCENTS [REGION ...]`` with a whole-number age and
    gender F or M are warnings naming the line; a missing file is a warning.
    """
    return {spk: fields[2].lower() for spk, fields in _speaker_lines(path).values()}


def _speaker_lines(path: Path, warn: bool = True) -> dict[int, tuple[str, list[str]]]:
    """line number -> (speaker id with ``p``, fields) for the well-formed lines; the
    others (and a missing file) are warnings unless ``warn`` is false."""
    if not path.is_file():
        if warn:
            log.warning("%s not found: spk2gender will not be written", path)
        return {}
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if lineno == 1 and fields[:1] == ["ID"]:
            continue
        if len(fields) >= 4 and fields[1].isdigit() and fields[2] in ("F", "M"):
            spk = fields[0] if fields[0][:1] in ("p", "s") else f"p{fields[0]}"
            out[lineno] = (spk, fields)
        elif line.strip() and warn:
            log.warning(
                "%s:%d: not 'ID AGE GENDER ACCENTS [REGION]': %r (skipped)", path, lineno, line
            )
    return out


def _lhotse_speaker_info(path: Path, edinburgh: bool) -> str:
    """``speaker-info.txt`` as lhotse's parser needs it: the header, then the well-formed
    lines with ids in the release's convention (0.92: ``p225``, 0.80: ``225``)."""
    lines = ["ID  AGE  GENDER  ACCENTS  REGION"]
    for spk, fields in _speaker_lines(path, warn=False).values():
        spk_id = spk if edinburgh else spk.removeprefix("p")
        lines.append("  ".join([spk_id, *fields[1:]]))
    return "\n".join(lines) + "\n"


def vctk_utterances(
    corpus_dir: str | os.PathLike, mic: str = "mic1", nj: int = 1
) -> dict[str, Utterance]:
    """All utterances of one microphone: lhotse's, plus the audio it skips for want of text.

    Args:
        corpus_dir: see :func:`vctk_root`.
        mic (str): ``"mic1"`` (DPA 4035, omni) or ``"mic2"`` (Sennheiser MKH 800); 0.92
            only, 0.80 has one microphone.
        nj (int): threads for header reading.

    Returns:
        dict: utterance id -> :class:`~codectk.corpora.common.Utterance`.

    Raises:
        CorpusError: no VCTK folder, or no audio.
        ValueError: an unknown microphone.
    """
    check_choice("VCTK microphone", mic, MICS)
    root = vctk_root(corpus_dir)
    if root is None:
        raise CorpusError(f"{corpus_dir}: no VCTK corpus (wav48_silence_trimmed/ or wav48/)")
    edinburgh = (root / "wav48_silence_trimmed").is_dir()
    if edinburgh:
        pattern, audio_dir, wanted = _UTT_092, root / "wav48_silence_trimmed", f"*_{mic}.flac"
    else:
        log.info("%s: VCTK 0.80 (wav48/, one microphone): --mic %s does not apply", root, mic)
        pattern, audio_dir, wanted = _UTT_080, root / "wav48", "*.wav"
    files, misnamed, other_mic = [], [], []
    for f in sorted(audio_dir.glob("*/*")):
        if is_junk(f) or not f.is_file():
            continue
        m = pattern.match(f.stem)
        if not f.match(wanted):
            (other_mic if m and f.suffix == ".flac" else misnamed).append(f)
        elif m is None or m[1] != f.parent.name:
            misnamed.append(f)
        else:
            files.append(f)
    warn_many(
        f"files in {audio_dir} not named <spk>/{wanted.replace('*', '<spk>_<nnn>')} (skipped)",
        [str(p) for p in misnamed],
    )
    if not files:
        raise CorpusError(f"{audio_dir}: no {wanted} audio")
    audio, bad = probe_audio(files, SAMPLE_RATE, nj)
    stems = {p.stem for p in audio}
    txts = sorted((root / "txt").glob("*/*.txt"))
    no_audio = [t for t in txts if (f"{t.stem}_{mic}" if edinburgh else t.stem) not in stems]
    warn_many(f"transcripts without readable {wanted} audio (skipped)", [str(p) for p in no_audio])
    utts: dict[str, Utterance] = {}
    if len(no_audio) < len(txts):
        from lhotse.recipes import vctk as lhotse_vctk

        info = {
            root / "speaker-info.txt": _lhotse_speaker_info(root / "speaker-info.txt", edinburgh)
        }
        with lhotse_view(root, [*bad, *other_mic, *no_audio], info) as view:
            try:
                m = lhotse_vctk.prepare_vctk(view, use_edinburgh_vctk_url=edinburgh, mic_id=mic)
            except Exception as exc:
                raise CorpusError(f"{root}: lhotse's prepare_vctk failed: {exc}") from exc
            utts = from_lhotse(m["recordings"], m["supervisions"], view, root, audio)
    add_untranscribed(
        utts,
        audio,
        f"audio files in {audio_dir} have no transcript (lhotse skips them; kept, no text)",
        lambda stem: pattern.match(stem)[1],
    )
    return utts


def split_vctk(
    all_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    test_speakers: Sequence[str] = TEST_SPEAKERS,
    valid_speakers: Sequence[str] = VALID_SPEAKERS,
) -> dict[str, int]:
    """Split a VCTK data dir by speaker into ``<out_dir>/{train,valid,test}``.

    Args:
        all_dir: the data dir of every utterance.
        out_dir: parent of the three data dirs.
        test_speakers, valid_speakers: held-out speakers; those absent are a warning.

    Returns:
        dict: set name -> utterances.

    Raises:
        CorpusError: no test, validation or training speaker left.
    """
    utt2spk = read_scp(Path(all_dir) / "utt2spk")
    speakers = set(utt2spk.values())
    groups = {
        "test": set(test_speakers) & speakers,
        "valid": set(valid_speakers) & speakers,
    }
    groups["train"] = speakers - groups["test"] - groups["valid"]
    warn_many(
        f"held-out VCTK speakers not in {all_dir}",
        sorted((set(test_speakers) | set(valid_speakers)) - speakers),
    )
    counts = {}
    for name, spks in groups.items():
        if not spks:
            raise CorpusError(
                f"{all_dir}: no {name} speaker (held out: test {list(test_speakers)}, "
                f"valid {list(valid_speakers)})"
            )
        d = Path(out_dir) / name
        with atomic_dir(d) as tmp:  # replaces d whole: no file of an earlier run stays
            utts = [u for u, s in utt2spk.items() if s in spks]
            counts[name] = subset_data_dir(all_dir, tmp, utts)
            check_data_dir(tmp, d)
        log.info("%s: %d speakers, %d utterances", d, len(spks), counts[name])
    return counts


def prepare_vctk(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    mic: str = "mic1",
    nj: int = 1,
    split: bool = True,
) -> dict[str, int]:
    """Write ``<out_dir>/all`` and, with ``split``, ``<out_dir>/{train,valid,test}``.

    Args:
        corpus_dir: see :func:`vctk_root`.
        out_dir: parent of the data dirs (e.g. ``data``).
        mic (str): ``"mic1"`` or ``"mic2"`` (0.92 only).
        nj (int): threads for header reading.
        split (bool): also write the standard split (:func:`split_vctk`).

    Returns:
        dict: data dir name -> utterances.
    """
    root = vctk_root(corpus_dir)
    utts = vctk_utterances(corpus_dir, mic, nj)
    genders = read_speaker_info(root / "speaker-info.txt")
    counts = {"all": write_data_dir(Path(out_dir) / "all", utts, genders)}
    if split:
        counts.update(split_vctk(Path(out_dir) / "all", out_dir))
    return counts
