"""ViSQOL v3 in speech mode (``visqol-python``, a pure-Python port of Google's C++ ViSQOL).

M. Chinen, F. S. C. Lim, J. Skoglund, N. Gureev, F. O'Gorman, A. Hines, "ViSQOL v3: An
Open Source Production Ready Objective Speech and Audio Metric", QoMEX 2020; A. Hines,
J. Skoglund, A. C. Kokaram, N. Harte, "ViSQOL: an objective speech quality model",
EURASIP J. Audio Speech Music Process. 2015.

Speech mode works on 16 kHz signals (both are resampled with soxr when ``fs`` differs):
a 21-band gammatone spectrogram, 20-frame patches of the reference's voiced regions
(VAD), each matched within the degraded signal (global alignment by cross-correlation,
then per-patch search), their neurogram similarity (NSIM) averaged and mapped to MOS-LQO
by ViSQOL's exponential fit ``a + exp(b (nsim - x0))`` scaled so that an identical
signal scores 5.0 (the C++ ``--use_lattice_model=false`` mapping; the C++ default since
v3.3 is a deep-lattice model that needs the ``ai-edge-litert`` runtime, which codectk
does not install, so the two mappings' numbers are not interchangeable). The mapping is
clipped to [1, 5].

Minimum length: 1 s of both signals at 16 kHz (the port fails below about 0.65 s). NaN,
with a logged warning, for shorter signals, a silent signal, or any failure of the
patch search.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

from codectk.io.audio import resample

log = logging.getLogger(__name__)

VISQOL_FS = 16000  # Hz: speech mode
MIN_SECONDS = 1.0


@functools.cache
def _api():
    import visqol

    api = visqol.VisqolApi()
    api.create(mode="speech", use_lattice_model=False)
    return api


def visqol_speech(ref: np.ndarray, deg: np.ndarray, fs: int) -> float:
    """ViSQOL v3 MOS-LQO of ``deg`` against ``ref``, speech mode (module docstring).

    Args:
        ref (np.ndarray): reference waveform (T,), float in [-1, 1], at fs Hz.
        deg (np.ndarray): degraded waveform (T',) at fs Hz; ViSQOL aligns it itself.
        fs (int): sample rate of both in Hz.

    Returns:
        float: MOS-LQO in [1, 5] (5.0 for identical signals; higher is better), or NaN
        with a logged warning (module docstring).

    Raises:
        ValueError: a signal that is not 1-D, empty or non-finite, or ``fs <= 0``.
    """
    ref, deg = np.asarray(ref), np.asarray(deg)
    for name, x in (("ref", ref), ("deg", deg)):
        if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"{name} must be a non-empty finite 1-D waveform, got {x.shape}")
    if fs <= 0:
        raise ValueError(f"sample rate {fs} Hz must be positive")
    ref = resample(ref.astype(np.float32), fs, VISQOL_FS).astype(np.float64)
    deg = resample(deg.astype(np.float32), fs, VISQOL_FS).astype(np.float64)
    n = min(ref.size, deg.size)
    if n < MIN_SECONDS * VISQOL_FS:
        log.warning("ViSQOL needs %.1f s, got %.3f s: scoring NaN", MIN_SECONDS, n / VISQOL_FS)
        return math.nan
    if not (np.any(ref) and np.any(deg)):
        log.warning("ViSQOL: reference or degraded signal is all zeros: scoring NaN")
        return math.nan
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(_api().measure_from_arrays(ref, deg, VISQOL_FS).moslqo)
    except (IndexError, ValueError) as exc:  # no patch could be placed
        log.warning("ViSQOL failed (%s: %s): scoring NaN", type(exc).__name__, exc)
        return math.nan
    if math.isnan(value):
        log.warning("ViSQOL returned NaN (no similarity could be measured)")
    return value
