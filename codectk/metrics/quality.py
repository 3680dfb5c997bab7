"""Perceptual quality and intelligibility metrics: wideband PESQ, STOI and ESTOI.

Thin, checked wrappers around the reference implementations:

* PESQ: ``pesq`` (python-pesq, the ITU-T P.862 C code) in wideband mode, ITU-T
  P.862.2 (2007), "Wideband extension to Recommendation P.862"; the score is the
  P.862.2 MOS-LQO mapping, ``0.999 + 4.0 / (1 + exp(-1.3669 * x + 3.8224))`` of the raw
  score x in [-0.5, 4.5], so it lies in [1.04, 4.64].
* STOI: ``pystoi``. C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An Algorithm
  for Intelligibility Prediction of Time-Frequency Weighted Noisy Speech", IEEE TASLP
  19(7), 2011 (eq. 5-6). ESTOI: J. Jensen, C. H. Taal, "An Algorithm for Predicting
  the Intelligibility of Speech Masked by Modulated Noise Maskers", IEEE/ACM TASLP
  24(11), 2016 (the mean of row- and column-normalised envelope products).

Inputs that the algorithms cannot score (no speech detected, shorter than PESQ's 0.25 s
or STOI's 30 frames, about 0.4 s, left after silence removal) give NaN and a logged warning, so
that a scoring run counts them instead of crashing.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pesq as _pesq
from pystoi import stoi as _pystoi

from codectk.io.audio import check_waveform, resample

log = logging.getLogger(__name__)

PESQ_FS = 16000  # Hz; P.862.2 wideband mode works on 16 kHz signals
PESQ_MIN_SAMPLES = PESQ_FS // 4  # python-pesq's BufferTooShortError limit (0.25 s)


def pesq_wb(ref: np.ndarray, deg: np.ndarray, fs: int) -> float:
    """Wideband PESQ (ITU-T P.862.2) of a degraded signal against its reference.

    Both signals are resampled to 16 kHz with soxr when ``fs != 16000`` (a signal at
    8 kHz is upsampled, and then scores as band-limited speech). PESQ aligns the two
    signals in time itself, so their lengths may differ.

    Args:
        ref (np.ndarray): reference waveform, shape (T,), float in [-1, 1], at fs Hz.
        deg (np.ndarray): degraded waveform, shape (T',), float, at fs Hz.
        fs (int): sample rate of both signals in Hz.

    Returns:
        float: MOS-LQO in [1.04, 4.64] (higher is better), or NaN with a logged warning
        when PESQ finds no utterance, a signal is all zeros or shorter than 0.25 s.

    Raises:
        ValueError: a signal that is not 1-D, empty or non-finite, or ``fs <= 0``.
        pesq.PesqError: any other failure of the PESQ C code.
    """
    ref, deg = check_waveform("ref", ref), check_waveform("deg", deg)
    if fs <= 0:
        raise ValueError(f"sample rate {fs} Hz must be positive")
    ref = resample(ref.astype(np.float32), fs, PESQ_FS).astype(np.float64)
    deg = resample(deg.astype(np.float32), fs, PESQ_FS).astype(np.float64)
    n = min(ref.size, deg.size)
    if n < PESQ_MIN_SAMPLES:
        log.warning(
            "PESQ needs at least %.2f s, got %.3f s: scoring NaN",
            PESQ_MIN_SAMPLES / PESQ_FS,
            n / PESQ_FS,
        )
        return math.nan
    if not (np.any(ref) and np.any(deg)):
        log.warning("PESQ: reference or degraded signal is all zeros: scoring NaN")
        return math.nan
    try:
        return float(_pesq.pesq(PESQ_FS, ref, deg, "wb"))
    except (_pesq.NoUtterancesError, _pesq.BufferTooShortError) as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        log.warning("PESQ failed (%s): scoring NaN", reason)
        return math.nan


def stoi(ref: np.ndarray, deg: np.ndarray, fs: int, extended: bool = False) -> float:
    """Short-time objective intelligibility, STOI (Taal 2011) or ESTOI (Jensen 2016).

    pystoi resamples internally to 10 kHz, drops frames more than 40 dB below the
    loudest reference frame, and correlates 384 ms segments of one-third octave band
    envelopes: Taal 2011 eq. 5-6 (clipped, normalised correlation averaged over bands
    and segments), or Jensen 2016 when ``extended`` (row- and column-normalised
    segment matrices, which also handles modulated noise maskers).

    Args:
        ref (np.ndarray): clean reference waveform, shape (T,), at fs Hz.
        deg (np.ndarray): degraded waveform, shape (T,) (same length), at fs Hz.
        fs (int): sample rate in Hz.
        extended (bool): compute ESTOI instead of STOI.

    Returns:
        float: STOI in about [0, 1] (ESTOI can be slightly negative); higher is better.
        NaN with a logged warning when fewer than 30 frames remain after silence
        removal (pystoi itself would return 1e-5).

    Raises:
        ValueError: a signal that is not 1-D, empty or non-finite, lengths that differ,
            or ``fs <= 0``.
    """
    ref, deg = check_waveform("ref", ref), check_waveform("deg", deg)
    if ref.shape != deg.shape:
        raise ValueError(f"STOI needs equal lengths, got ref {ref.shape} and deg {deg.shape}")
    if fs <= 0:
        raise ValueError(f"sample rate {fs} Hz must be positive")
    name = "ESTOI" if extended else "STOI"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_pystoi(ref.astype(np.float64), deg.astype(np.float64), fs, extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        log.warning("%s: fewer than 30 frames left after silence removal: scoring NaN", name)
        return math.nan
    return value


def estoi(ref: np.ndarray, deg: np.ndarray, fs: int) -> float:
    """Extended STOI (Jensen and Taal 2016); same as ``stoi(ref, deg, fs, extended=True)``."""
    return stoi(ref, deg, fs, extended=True)
