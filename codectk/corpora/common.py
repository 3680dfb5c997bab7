"""What every corpus wrapper shares: audio header checks, a filtered view of a corpus for
lhotse, lhotse manifests -> utterances, and utterances -> a validated Kaldi data dir.

lhotse's ``prepare_*`` recipes know each corpus's layout and quirks, but stop at the
first unreadable audio file or malformed metadata line, and drop audio that has no
transcript. The wrappers therefore:

1. read every audio header first (:func:`probe_audio`), warning about unreadable files,
   unexpected sample rates and multi-channel files, each named;
2. run lhotse on the corpus itself, or, when some files must be hidden from it (an
   unreadable file, a transcript whose audio is missing) or rewritten (a metadata file
   with malformed lines), on a :func:`lhotse_view`: a tree of symbolic links to the
   corpus with those changes, which never touches the corpus;
3. add back the readable audio that lhotse left out for lack of a transcript (codecs need
   no text), with a warning;
4. write the Kaldi data dir, then fix and validate it (:func:`write_data_dir`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from codectk.errors import CodectkError
from codectk.io.datadir import fix_data_dir, utt2spk_to_spk2utt, validate_data_dir, write_scp
from codectk.io.fileio import atomic_dir

log = logging.getLogger(__name__)

#: Standard unions of LibriSpeech and LibriTTS parts (same names in both corpora).
LIBRI_UNIONS: dict[str, tuple[str, ...]] = {
    "train-clean-460": ("train-clean-100", "train-clean-360"),
    "train-960": ("train-clean-100", "train-clean-360", "train-other-500"),
}
#: The seven parts of LibriSpeech and of LibriTTS.
LIBRI_PARTS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
#: How many examples a warning about many files shows.
SHOWN = 5


class CorpusError(CodectkError, RuntimeError):
    """A corpus that cannot be prepared; the message names the file or folder."""


@dataclass(frozen=True)
class AudioInfo:
    """An audio file's header.

    Attributes:
        sample_rate (int): in Hz.
        channels (int): number of channels.
        num_samples (int): samples per channel.
    """

    sample_rate: int
    channels: int
    num_samples: int


@dataclass
class Utterance:
    """One entry of a Kaldi data dir.

    Attributes:
        speaker (str): speaker id (a prefix of the utterance id).
        path (str): audio file.
        num_samples (int): samples per channel.
        sample_rate (int): the file's sample rate in Hz.
        text (str | None): transcript, None when the corpus has none for it.
    """

    speaker: str
    path: str
    num_samples: int
    sample_rate: int
    text: str | None = None


def warn_many(what: str, items: list, shown: int = SHOWN) -> None:
    """Log one warning ``<n> <what>: a, b, ... (and m more)`` if ``items`` is not empty."""
    if not items:
        return
    more = f" (and {len(items) - shown} more)" if len(items) > shown else ""
    log.warning("%d %s: %s%s", len(items), what, ", ".join(map(str, items[:shown])), more)


def is_junk(path: Path) -> bool:
    """macOS resource forks (``._x.wav``) shipped in some archives; lhotse skips them too."""
    return path.name.startswith("._")


def probe_audio(
    files: Iterable[Path], expected_rate: int, nj: int = 1
) -> tuple[dict[Path, AudioInfo], dict[Path, str]]:
    """Read the header of every file (``soundfile.info``) in ``nj`` threads.

    Unreadable files are logged one by one (each is named) and returned apart; a sample
    rate other than ``expected_rate`` or more than one channel is a warning only: stage 2
    resamples to ``--fs`` and averages the channels.

    Args:
        files: audio files.
        expected_rate (int): the corpus's sample rate in Hz.
        nj (int): threads.

    Returns:
        tuple: (readable: path -> :class:`AudioInfo`, unreadable: path -> reason).
    """
    files = sorted(set(files))

    def one(path: Path) -> AudioInfo | str:
        try:
            info = sf.info(str(path))
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
            return f"{type(exc).__name__}: {exc}"
        if info.frames <= 0:
            return "no samples"
        return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))

    with ThreadPoolExecutor(max(1, nj)) as ex:
        results = list(ex.map(one, files))
    good: dict[Path, AudioInfo] = {}
    bad: dict[Path, str] = {}
    for path, res in zip(files, results):
        if isinstance(res, str):
            bad[path] = res
            log.warning("%s: unreadable audio (%s): skipped", path, res)
        else:
            good[path] = res
    warn_many(
        f"files not at the corpus rate of {expected_rate} Hz (kept: stage 2 resamples them)",
        [f"{p} ({i.sample_rate} Hz)" for p, i in good.items() if i.sample_rate != expected_rate],
    )
    warn_many(
        "multi-channel files (kept: stage 2 averages the channels)",
        [f"{p} ({i.channels} channels)" for p, i in good.items() if i.channels != 1],
    )
    return good, bad


@contextlib.contextmanager
def lhotse_view(
    root: Path,
    omit: Iterable[Path],
    replace: Mapping[Path, str] | None = None,
) -> Iterator[Path]:
    """The corpus folder ``root`` as lhotse should see it: without the files in ``omit``
    and with the text files in ``replace`` rewritten.

    With nothing to change this is ``root`` itself. Otherwise a temporary tree mirrors
    ``root`` in the system's temporary folder: top-level entries with nothing to change
    are linked whole; the others are rebuilt as real folders with a link per file
    (``Path.rglob`` does not descend into linked folders below where it starts). lhotse
    then records paths inside the view; :func:`from_view` maps them back.

    Args:
        root: the corpus folder.
        omit: files under ``root`` to hide.
        replace: files under ``root`` (existing or not) -> the text lhotse reads instead.

    Yields:
        Path: the folder to give lhotse.
    """
    root = Path(root)
    omit = {Path(p).relative_to(root) for p in omit}
    replace = {Path(p).relative_to(root): text for p, text in (replace or {}).items()}
    if not omit and not replace:
        yield root
        return
    dirty_top = {p.parts[0] for p in (*omit, *replace)}
    tmp = Path(tempfile.mkdtemp(prefix="lhotse_view."))
    view = tmp / root.name
    try:
        view.mkdir()
        for entry in sorted(root.iterdir()):
            if entry.name not in dirty_top:
                (view / entry.name).symlink_to(entry.resolve())
            elif entry.is_dir():
                for dirpath, _, filenames in os.walk(entry, followlinks=True):
                    rel = Path(dirpath).relative_to(root)
                    (view / rel).mkdir(parents=True, exist_ok=True)
                    for name in filenames:
                        if rel / name not in omit and rel / name not in replace:
                            (view / rel / name).symlink_to(Path(dirpath, name).resolve())
        for rel, text in replace.items():
            (view / rel).parent.mkdir(parents=True, exist_ok=True)
            (view / rel).write_text(text, encoding="utf-8")
        log.info(
            "lhotse reads %s through %s (%d files hidden, %d rewritten)",
            root,
            view,
            len(omit),
            len(replace),
        )
        yield view
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def from_view(source: str, view: Path, root: Path) -> Path:
    """Map a path lhotse recorded inside ``view`` back to the corpus ``root``."""
    path = Path(source)
    if view == root:
        return path
    with contextlib.suppress(ValueError):
        return root / path.relative_to(view)
    return path


def from_lhotse(
    recordings,
    supervisions,
    view: Path,
    root: Path,
    audio: Mapping[Path, AudioInfo],
    utt_id: Callable[[str], str] = str,
) -> dict[str, Utterance]:
    """lhotse ``RecordingSet`` + ``SupervisionSet`` (one supervision per recording) ->
    utterances keyed by Kaldi utterance id.

    Args:
        recordings: lhotse ``RecordingSet``.
        supervisions: lhotse ``SupervisionSet``; gives the speaker and the text.
        view, root: the folder lhotse read (see :func:`lhotse_view`) and the corpus.
        audio: the headers read by :func:`probe_audio`, keyed by corpus path; a recording
            whose file is not among them is dropped with a warning.
        utt_id: recording id -> utterance id.

    Returns:
        dict: utterance id -> :class:`Utterance`.
    """
    by_rec = {s.recording_id: s for s in supervisions}
    out: dict[str, Utterance] = {}
    unknown = []
    for rec in recordings:
        sup = by_rec.get(rec.id)
        if sup is None:
            continue
        path = from_view(rec.sources[0].source, view, root)
        if path not in audio:
            unknown.append(str(path))
            continue
        info = audio[path]
        text = " ".join((sup.text or "").split()) or None
        out[utt_id(rec.id)] = Utterance(
            sup.speaker, str(path), info.num_samples, info.sample_rate, text
        )
    warn_many("files listed by lhotse but not found by the header scan (skipped)", unknown)
    return out


def libri_part_audio(
    part_dir: Path, ext: str, utt_re: re.Pattern[str], layout: str, exclude: frozenset = frozenset()
) -> list[Path]:
    """The audio files ``<part_dir>/<spk>/<chapter>/*.<ext>`` of one part of a
    LibriSpeech-style corpus, sorted.

    A file is kept when ``utt_re`` matches its stem with the speaker and chapter folder
    names as its first two groups; the others are named in one warning (``files not named
    <layout> (skipped)``). macOS ``._*`` files and the names in ``exclude`` are skipped
    silently. No file at all is a warning.

    Args:
        part_dir: the part's folder, e.g. ``LibriSpeech/train-clean-100``.
        ext (str): audio file extension without the dot (``"flac"``, ``"wav"``).
        utt_re: pattern of a file stem; groups 1 and 2 are the speaker and chapter ids.
        layout (str): the expected path, for the warning.
        exclude: file names to skip.

    Returns:
        list: the well-named audio files.
    """
    files, misnamed = [], []
    for f in sorted(part_dir.glob(f"*/*/*.{ext}")):
        if is_junk(f) or f.name in exclude:
            continue
        m = utt_re.match(f.stem)
        if m is None or (m[1], m[2]) != (f.parent.parent.name, f.parent.name):
            misnamed.append(str(f))
        else:
            files.append(f)
    warn_many(f"files not named {layout} (skipped)", misnamed)
    if not files:
        log.warning("%s: no audio (empty or missing part): skipped", part_dir)
    return files


def lhotse_part(
    prepare: Callable,
    root: Path,
    part: str,
    audio: Mapping[Path, AudioInfo],
    omit: Iterable[Path],
    replace: Mapping[Path, str] | None = None,
    nj: int = 1,
    utt_id: Callable[[str], str] = str,
) -> dict[str, Utterance]:
    """Run a lhotse ``prepare_*`` recipe of a LibriSpeech-style corpus on one part, seen
    through :func:`lhotse_view`, and return its utterances (:func:`from_lhotse`).

    Args:
        prepare: lhotse's recipe, called as ``prepare(view, dataset_parts=[part],
            num_jobs=nj)``.
        root: the corpus folder.
        part (str): the part's name.
        audio, utt_id: see :func:`from_lhotse`.
        omit, replace: see :func:`lhotse_view`.
        nj (int): lhotse's jobs.

    Returns:
        dict: utterance id -> :class:`Utterance`; empty (with a warning) when lhotse found
        no transcribed audio.

    Raises:
        CorpusError: lhotse failed otherwise.
    """
    part_dir = root / part
    with lhotse_view(root, omit, replace) as view:
        try:
            manifests = prepare(view, dataset_parts=[part], num_jobs=nj)
        except AssertionError as exc:  # fix_manifests: "No recordings left ..."
            log.warning("%s: lhotse found no transcribed audio (%s)", part_dir, exc)
            return {}
        except Exception as exc:
            raise CorpusError(f"{part_dir}: lhotse's {prepare.__name__} failed: {exc}") from exc
        if part not in manifests:
            return {}
        m = manifests[part]
        return from_lhotse(m["recordings"], m["supervisions"], view, root, audio, utt_id)


def add_untranscribed(
    utts: dict[str, Utterance],
    audio: Mapping[Path, AudioInfo],
    what: str,
    speaker: Callable[[str], str],
    utt_id: Callable[[str], str] = str,
    text: Callable[[Path], str | None] | None = None,
) -> None:
    """Add to ``utts`` the readable audio that lhotse left without a transcript (codecs
    need no text), all named in one warning ``<n> <what>: ...``.

    Args:
        utts: utterance id -> :class:`Utterance`, completed in place.
        audio: the headers read by :func:`probe_audio`.
        what (str): the warning's text.
        speaker: file stem -> speaker id.
        utt_id: file stem -> utterance id.
        text: audio file -> its transcript or None; None: no text.
    """
    untranscribed = [p for p in audio if utt_id(p.stem) not in utts]
    warn_many(what, [str(p) for p in untranscribed])
    for p in untranscribed:
        info = audio[p]
        utts[utt_id(p.stem)] = Utterance(
            speaker(p.stem), str(p), info.num_samples, info.sample_rate, text(p) if text else None
        )


def check_speaker_prefix(utts: Mapping[str, Utterance]) -> None:
    """Raise if a speaker id does not prefix its utterance ids, or if sorting by speaker
    would order utterances differently than sorting by utterance id (Kaldi's rule, which
    is why its ids separate the speaker with ``-``)."""
    for utt, u in utts.items():
        if not utt.startswith(u.speaker):
            raise CorpusError(
                f"utterance {utt!r} ({u.path}): not prefixed by speaker {u.speaker!r}"
            )
    by_utt = sorted(utts, key=lambda k: k.encode())
    by_spk = sorted(utts, key=lambda k: (utts[k].speaker.encode(), k.encode()))
    if by_utt != by_spk:
        i = next(i for i, (a, b) in enumerate(zip(by_utt, by_spk)) if a != b)
        raise CorpusError(
            f"utterance ids do not sort like their speaker ids ({by_utt[i]!r} vs {by_spk[i]!r}); "
            "separate the speaker id with '-'"
        )


def write_data_dir(
    out_dir: str | os.PathLike,
    utts: Mapping[str, Utterance],
    spk2gender: Mapping[str, str] | None = None,
) -> int:
    """Write a Kaldi data dir, then fix and validate it.

    Files: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``utt2num_samples`` (samples per
    channel at each file's own rate), ``spk2gender`` (``f``/``m``, for the speakers
    ``spk2gender`` knows) and ``text`` when any utterance has a transcript (the others get
    an empty one, so that no audio is dropped for want of text). The directory is built
    under a temporary name and then replaces ``out_dir`` whole.

    Args:
        out_dir: the data dir.
        utts: utterance id -> :class:`Utterance`.
        spk2gender: speaker id -> ``f`` or ``m``.

    Returns:
        int: number of utterances written.

    Raises:
        CorpusError: no utterance, bad ids, or a data dir that does not validate.
    """
    out = Path(out_dir)
    if not utts:
        raise CorpusError(f"{out}: no utterance to write")
    check_speaker_prefix(utts)
    utt2spk = {k: u.speaker for k, u in utts.items()}
    speakers = set(utt2spk.values())
    genders = {s: g for s, g in (spk2gender or {}).items() if s in speakers}
    warn_many(f"speakers in {out} have no gender", sorted(speakers - set(genders)))
    with atomic_dir(out) as tmp:
        write_scp(tmp / "wav.scp", {k: u.path for k, u in utts.items()})
        write_scp(tmp / "utt2spk", utt2spk)
        spk2utt = utt2spk_to_spk2utt(utt2spk)
        write_scp(tmp / "spk2utt", {s: " ".join(u) for s, u in spk2utt.items()})
        write_scp(tmp / "utt2num_samples", {k: u.num_samples for k, u in utts.items()})
        if any(u.text for u in utts.values()):
            write_scp(tmp / "text", {k: u.text or "" for k, u in utts.items()})
        if genders:
            write_scp(tmp / "spk2gender", genders)
        fix_data_dir(tmp)
        check_data_dir(tmp, out)
    hours = sum(u.num_samples / u.sample_rate for u in utts.values()) / 3600.0
    log.info("wrote %s: %d utterances, %d speakers, %.2f h", out, len(utts), len(speakers), hours)
    return len(utts)


def check_data_dir(d: Path, name: Path | None = None) -> None:
    """Raise :class:`CorpusError` listing the problems of data dir ``d`` (called ``name``)."""
    problems = validate_data_dir(d)
    if problems:
        raise CorpusError(f"{name or d}: invalid data dir: " + "; ".join(problems))


def read_libri_speakers(path: Path) -> dict[str, str]:
    """Read LibriSpeech's ``SPEAKERS.TXT`` or LibriTTS's ``SPEAKERS.txt``.

    Lines ``103  | F | train-clean-100  | 23.00 | Karen Savage``; ``;`` starts a comment.

    Returns:
        dict: speaker id -> ``f`` or ``m``; empty (with a warning) when the file is missing.
    """
    if not path.is_file():
        log.warning("%s not found: spk2gender will not be written", path)
        return {}
    genders = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(";") or not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or fields[1] not in ("F", "M"):
            log.warning("%s:%d: not 'ID | SEX | ...' with SEX F or M: %r", path, lineno, line)
            continue
        genders[fields[0]] = fields[1].lower()
    return genders


def libri_root(corpus_dir: str | os.PathLike, name: str) -> Path:
    """The folder holding the parts: ``<corpus_dir>/<name>`` if it exists (or if
    ``corpus_dir`` holds no part either: where a download puts it), else ``corpus_dir``."""
    d = Path(corpus_dir).absolute()
    if (d / name).is_dir() or not any((d / p).is_dir() for p in LIBRI_PARTS):
        return d / name
    return d


def ensure_parts(
    root: Path, parts: Iterable[str], download: Callable[[list[str]], object], corpus: str
) -> None:
    """Download the parts of a LibriSpeech-style corpus that are not on disk.

    A part is on disk when ``<root>/<part>`` exists, unless lhotse's download archive
    ``<root>/../<part>.tar.gz`` lies beside it without lhotse's ``.completed`` marker: an
    extraction that was interrupted, which is redone. A corpus you put there yourself has
    no archive beside it and is never touched; nor is the network when nothing is missing.

    Args:
        root: the corpus folder (``.../LibriSpeech``).
        parts: part names.
        download: called with the missing parts (lhotse's downloader, which resumes a
            partial archive and re-extracts a part without ``.completed``).
        corpus: the corpus name for messages.

    Raises:
        CorpusError: the download or the extraction failed (the message says what to do).
    """
    need = []
    for part in parts:
        d = root / part
        archive = root.parent / f"{part}.tar.gz"
        if (d / ".completed").is_file() or (d.is_dir() and not archive.exists()):
            continue
        if d.is_dir():
            log.warning(
                "%s: %s lies beside it without lhotse's .completed marker: the extraction "
                "looks interrupted, redoing it (touch %s to keep the folder as it is)",
                d,
                archive.name,
                d / ".completed",
            )
        need.append(part)
    if not need:
        return
    log.info(
        "%s parts %s not found under %s: downloading them with lhotse into %s "
        "(an interrupted download resumes when this is run again)",
        corpus,
        need,
        root,
        root.parent,
    )
    with download_errors(f"{corpus} parts {need}", root.parent):
        download(need)


@contextlib.contextmanager
def download_errors(what: str, target: Path) -> Iterator[None]:
    """Turn a failed download or extraction into a :class:`CorpusError` that says what to do."""
    try:
        yield
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise CorpusError(
            f"downloading {what} into {target} failed ({type(exc).__name__}: {exc}); run again "
            "to resume, delete a corrupt archive there to start over, or put the corpus there "
            "yourself (no network is needed then)"
        ) from exc


def check_parts(parts: Iterable[str], known: Sequence[str], corpus: str) -> None:
    """Raise ``ValueError`` naming the parts not in ``known``."""
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ValueError(f"unknown {corpus} part(s) {unknown}; choose from {list(known)}")


def prepare_parts(
    root: Path,
    out_dir: str | os.PathLike,
    parts: Sequence[str] | None,
    known: Sequence[str],
    utterances: Callable[[str], Mapping[str, Utterance]],
    genders: Mapping[str, str],
    corpus: str,
) -> dict[str, int]:
    """Write ``<out_dir>/<part>`` for each part of a LibriSpeech-style corpus on disk.

    Args:
        root: the corpus folder (``.../LibriSpeech``).
        out_dir: parent of the data dirs.
        parts: part names; None: every part on disk. A part not on disk, or one for which
            ``utterances`` finds nothing, is a warning and a skip.
        known: the corpus's part names.
        utterances: part -> its utterances.
        genders: speaker id -> ``f``/``m``.
        corpus: the corpus name in messages (``LibriSpeech``, ``LibriTTS_R``): ``root``
            may be any folder holding the parts.

    Returns:
        dict: part -> utterances written.

    Raises:
        CorpusError: no part on disk.
        ValueError: a part name not in ``known``.
    """
    present = [p for p in known if (root / p).is_dir()]
    parts = present if parts is None else list(parts)
    check_parts(parts, known, corpus)
    warn_many(
        f"{corpus} parts not found under {root} (skipped)",
        [p for p in parts if p not in present],
    )
    parts = [p for p in parts if p in present]
    if not parts:
        raise CorpusError(f"{root}: no {corpus} part found (expected some of {list(known)})")
    written = {}
    for part in parts:
        utts = utterances(part)
        if utts:
            written[part] = write_data_dir(Path(out_dir) / part, utts, genders)
    return written
