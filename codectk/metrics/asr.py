"""Word and character error rates of an offline recogniser (PocketSphinx) against a
transcript, for the reference and the decoded speech alike.

* Recogniser: CMU PocketSphinx 5.1.1 (D. Huggins-Daines, M. Kumar, A. Chan, A. W. Black,
  M. Ravishankar, A. I. Rudnicky, "PocketSphinx: A Free, Real-Time Continuous Speech
  Recognition System for Hand-Held Devices", ICASSP 2006) with the model inside its
  wheel: the generic US English acoustic model (``en-us``, 16 kHz), the CMU
  pronouncing dictionary and the generic trigram language model ``en-us.lm.bin``, with
  the package's default search settings. Audio is resampled to 16 kHz (soxr), rounded to
  16-bit PCM and decoded as one utterance, from the front end's initial state (so a
  hypothesis does not depend on what was decoded before).
* Known accuracy: 31.82% WER on LibriSpeech test-clean for PocketSphinx with this
  generic model (Picovoice speech-to-text-benchmark, README of commit 97f560e,
  2019-09-02, pocketsphinx-python 0.1.15). A codec's WER therefore has to be read
  against the recogniser's WER on the references (``wer_ref``): ``wer_delta = wer -
  wer_ref`` is what the codec adds.
* Scoring: ``jiwer`` (Levenshtein alignment). Both texts are normalised the same way
  first: lower case, every character that is not a letter, digit, apostrophe or space
  becomes a space, apostrophes are dropped (``DON'T`` and ``don't`` both become
  ``dont``), runs of spaces collapse. WER = (S + D + I) / N words; CER the same over
  characters (spaces included) of the normalised texts.

An utterance without a transcript line, or whose transcript normalises to nothing,
scores NaN (with a logged warning); an empty hypothesis is all deletions (WER 1).
Minimum length: none (a clip shorter than one 10 ms frame gives an empty hypothesis).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codectk.io.audio import resample
from codectk.io.fileio import atomic_write

log = logging.getLogger(__name__)

ASR_FS = 16000  # Hz: the en-us acoustic model's rate
_NOT_WORD = re.compile(r"[^\w\s']|_")


def recogniser_id() -> str:
    """Names the recogniser and its model, e.g. ``pocketsphinx-5.1.1/en-us``."""
    return f"pocketsphinx-{importlib.metadata.version('pocketsphinx')}/en-us"


@functools.cache
def _decoder():
    import pocketsphinx

    return pocketsphinx.Decoder(loglevel="FATAL")  # the bundled en-us model (defaults)


def pcm16(wav: np.ndarray, fs: int) -> bytes:
    """The recogniser's input: mono 16 kHz 16-bit little-endian PCM.

    Args:
        wav (np.ndarray): waveform (T,), float in [-1, 1], at fs Hz.
        fs (int): sample rate in Hz.

    Returns:
        bytes: 2 bytes per sample at 16 kHz.
    """
    x = resample(np.asarray(wav, dtype=np.float32), fs, ASR_FS)
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def transcribe_pcm(pcm: bytes) -> str:
    """PocketSphinx's best hypothesis for 16 kHz 16-bit PCM (words, lower case).

    The feature front end is reset first: its cepstral mean normalisation otherwise
    carries over from the utterances decoded before, and the hypothesis would depend on
    the decoding order (and so on ``nj``).
    """
    dec = _decoder()
    dec.reinit_feat()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    hyp = dec.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


def transcribe(wav: np.ndarray, fs: int) -> str:
    """Recognise one utterance (module docstring).

    Args:
        wav (np.ndarray): waveform (T,), float in [-1, 1], at fs Hz.
        fs (int): sample rate in Hz.

    Returns:
        str: the hypothesis (may be empty).
    """
    return transcribe_pcm(pcm16(wav, fs))


def normalize(text: str) -> str:
    """Lower case, non-word characters to spaces, apostrophes dropped, spaces collapsed."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).replace("'", "").split())


@dataclass(frozen=True)
class Errors:
    """Edit-distance counts of a hypothesis against a reference text.

    Attributes:
        word_errors (int): substitutions + deletions + insertions, in words.
        words (int): words in the normalised reference.
        char_errors (int): the same over characters.
        chars (int): characters (spaces included) in the normalised reference.
    """

    word_errors: int
    words: int
    char_errors: int
    chars: int

    @property
    def wer(self) -> float:
        return self.word_errors / self.words if self.words else math.nan

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else math.nan


def errors(reference: str, hypothesis: str) -> Errors | None:
    """Word and character errors of ``hypothesis`` against ``reference`` (normalised).

    Returns:
        Errors | None: None when the reference normalises to an empty text.
    """
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return None
    if not hyp:  # all deletions (jiwer needs a non-empty string on both sides)
        return Errors(len(ref.split()), len(ref.split()), len(ref), len(ref))
    w = jiwer.process_words(ref, hyp)
    c = jiwer.process_characters(ref, hyp)
    return Errors(
        w.substitutions + w.deletions + w.insertions,
        w.substitutions + w.deletions + w.hits,
        c.substitutions + c.deletions + c.insertions,
        c.substitutions + c.deletions + c.hits,
    )


class HypothesisCache:
    """Hypotheses keyed by the SHA-256 of the recogniser's input and the recogniser id,
    kept in ``<cache_dir>/asr.tsv`` (``key<TAB>hypothesis``), so that the same reference
    audio is recognised once for every system scored against it.

    Args:
        cache_dir (Path | None): folder of the cache file; None keeps it in memory.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.path = None if cache_dir is None else Path(cache_dir) / "asr.tsv"
        self.entries: dict[str, str] = {}
        self.new: dict[str, str] = {}
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                key, _, hyp = line.partition("\t")
                self.entries[key] = hyp

    @staticmethod
    def key(pcm: bytes) -> str:
        return hashlib.sha256(recogniser_id().encode() + b"\0" + pcm).hexdigest()

    def transcribe(self, wav: np.ndarray, fs: int) -> str:
        """:func:`transcribe`, or the cached hypothesis of the same input."""
        pcm = pcm16(wav, fs)
        k = self.key(pcm)
        if k not in self.entries:
            self.entries[k] = self.new[k] = transcribe_pcm(pcm)
        return self.entries[k]

    def save(self) -> None:
        """Write the cache (atomically) when it gained entries and has a file."""
        if self.path is None or not self.new:
            return
        with atomic_write(self.path) as f:
            for k, hyp in sorted(self.entries.items()):
                f.write(f"{k}\t{hyp}\n")
        self.new = {}
