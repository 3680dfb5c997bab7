"""Speaker similarity: cosine of speaker embeddings of the reference and the decoded speech.

The embeddings come from Resemblyzer 0.1.4's voice encoder (``pretrained.pt`` inside its
wheel): the GE2E speaker encoder of L. Wan, Q. Wang, A. Papir, I. Lopez Moreno,
"Generalized End-to-End Loss for Speaker Verification", ICASSP 2018 (3 LSTM layers of
256 units over 40-band mel frames of 25 ms every 10 ms, a 256-dimensional embedding),
as trained for SV2TTS (Y. Jia et al., "Transfer Learning from Speaker Verification to
Multispeaker Text-To-Speech Synthesis", NeurIPS 2018).

Each signal goes through Resemblyzer's own preprocessing: resampled to 16 kHz (soxr, by
codectk), raised to -30 dBFS when quieter, silences longer than about 0.2 s cut with
WebRTC's VAD (mode 3, 30 ms windows); the utterance embedding is the normalised mean of
the embeddings of 1.6 s windows at 1.3 windows per second (a shorter utterance is
zero-padded to one window). The score is the cosine of the two unit embeddings (the
encoder's ReLU output makes it lie in [0, 1]; higher is more similar).

Minimum length: at least one 30 ms VAD window judged voiced in each signal; otherwise NaN
with a logged warning.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import math
import sys
import types
import warnings

import numpy as np

from codectk.io.audio import resample

log = logging.getLogger(__name__)

SPEAKER_FS = 16000  # Hz


def _import_resemblyzer():
    """Import Resemblyzer. Its dependency webrtcvad 2.0.10 (2017) reads its own version
    with ``pkg_resources``, which setuptools 81+ no longer ships: a stand-in answering
    ``get_distribution(name).version`` from ``importlib.metadata`` is present during
    that import only."""
    if "webrtcvad" not in sys.modules:
        try:
            import webrtcvad  # noqa: F401
        except ModuleNotFoundError as exc:
            if exc.name != "pkg_resources":
                raise
            shim = types.ModuleType("pkg_resources")
            shim.get_distribution = lambda name: types.SimpleNamespace(
                version=importlib.metadata.version(name)
            )
            sys.modules["pkg_resources"] = shim
            try:
                import webrtcvad  # noqa: F401
            finally:
                del sys.modules["pkg_resources"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.morphology
        import resemblyzer
    return resemblyzer


@functools.cache
def _encoder():
    resemblyzer = _import_resemblyzer()
    return resemblyzer.VoiceEncoder("cpu", verbose=False)


def embed(wav: np.ndarray, fs: int) -> np.ndarray | None:
    """Resemblyzer's utterance embedding (module docstring).

    Args:
        wav (np.ndarray): waveform (T,), float in [-1, 1], at fs Hz.
        fs (int): sample rate in Hz.

    Returns:
        np.ndarray | None: unit vector (256,), float32; None when the VAD finds no speech.
    """
    resemblyzer = _import_resemblyzer()
    x = resample(np.asarray(wav, dtype=np.float32), fs, SPEAKER_FS).astype(np.float32)
    if not np.any(x):
        return None
    x = resemblyzer.preprocess_wav(x, source_sr=None)
    if x.size == 0:
        return None
    return _encoder().embed_utterance(x)


def speaker_similarity(ref: np.ndarray, deg: np.ndarray, fs: int) -> float:
    """Cosine similarity of the speaker embeddings of ``ref`` and ``deg``.

    Args:
        ref (np.ndarray): reference waveform (T,) at fs Hz.
        deg (np.ndarray): decoded waveform (T',) at fs Hz.
        fs (int): sample rate of both in Hz.

    Returns:
        float: cosine in [0, 1] (higher is more similar), or NaN with a logged warning
        when either signal has no speech the VAD keeps.

    Raises:
        ValueError: a signal that is not 1-D, empty or non-finite, or ``fs <= 0``.
    """
    for name, x in (("ref", ref), ("deg", deg)):
        x = np.asarray(x)
        if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"{name} must be a non-empty finite 1-D waveform, got {x.shape}")
    if fs <= 0:
        raise ValueError(f"sample rate {fs} Hz must be positive")
    a, b = embed(ref, fs), embed(deg, fs)
    if a is None or b is None:
        which = "reference" if a is None else "decoded signal"
        log.warning("speaker similarity: no speech found in the %s: scoring NaN", which)
        return math.nan
    value = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    if not math.isfinite(value):  # an all-zero embedding (every ReLU output 0)
        log.warning("speaker similarity: a zero embedding: scoring NaN")
        return math.nan
    return value
