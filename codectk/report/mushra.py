"""MUSHRA listening test (ITU-R BS.1534-3) as one static page that works from the file
system: stimuli files and ``mushra.html``.

Each trial is one utterance: the open reference, and in a random order (drawn in the
browser, per listener and trial) the hidden reference, the mandatory low-pass anchor
(the reference low-pass filtered at 3.5 kHz, BS.1534-3 section 4.1) and every system
under test. Ratings are sliders from 0 to 100; a trial cannot be left before one
slider is at 100. Answers download as a CSV file (``listener, session, seed, trial,
utt, system, label, score``), read by ``python -m codectk.bin.mushra_scores``.

Not done here, left to the experimenter: loudness alignment of the stimuli (BS.1534
asks for equal loudness), the training phase, and the choice of at most 12 stimuli per
trial.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, firwin

from codectk.io.fileio import atomic_write

HIDDEN_REFERENCE = "hidden_reference"
LOWPASS_ANCHOR = "anchor_lp3.5kHz"
LOWPASS_HZ = 3500.0
MAX_STIMULI = 12  # BS.1534-3: no more than 12 signals per trial, reference excluded


def lowpass(
    wav: np.ndarray, fs: int, cutoff_hz: float = LOWPASS_HZ, taps: int = 1023
) -> np.ndarray:
    """Zero-phase FIR low-pass filter (the BS.1534 low anchor at 3.5 kHz by default).

    A linear-phase windowed-sinc FIR (Hamming, ``taps`` long: about 3.3 * fs / taps Hz
    of transition band, >= 50 dB stop-band attenuation) applied centred, so the output
    is sample-aligned with the input.

    Args:
        wav (np.ndarray): waveform, shape (T,), float.
        fs (int): sample rate in Hz.
        cutoff_hz (float): -6 dB frequency in Hz.
        taps (int): odd filter length in samples.

    Returns:
        np.ndarray: float32, shape (T,).

    Raises:
        ValueError: a cutoff at or above Nyquist, or an even ``taps``.
    """
    if not 0 < cutoff_hz < fs / 2:
        raise ValueError(f"low-pass cutoff {cutoff_hz} Hz must lie in (0, {fs / 2}) at {fs} Hz")
    if taps % 2 == 0:
        raise ValueError(f"taps {taps} must be odd (a centred, zero-delay filter)")
    h = firwin(taps, cutoff_hz, fs=fs)
    return fftconvolve(np.asarray(wav, np.float64), h, mode="same").astype(np.float32)


def write_page(
    path: str | Path,
    trials: Sequence[Mapping],
    name: str = "codectk",
) -> Path:
    """Write the listening-test page.

    Args:
        path: ``.../mushra.html``; stimulus paths are relative to its folder.
        trials: one dict per trial: ``{"utt": str, "reference": relative path,
            "stimuli": [{"system": str, "src": relative path}, ...]}``; the stimuli
            must include :data:`HIDDEN_REFERENCE` and :data:`LOWPASS_ANCHOR`.
        name (str): test name, used in the CSV file name.

    Returns:
        Path: ``path``.

    Raises:
        ValueError: no trial, or a trial without the hidden reference or the anchor.
    """
    if not trials:
        raise ValueError("a MUSHRA test needs at least one trial")
    for t in trials:
        systems = [s["system"] for s in t["stimuli"]]
        for needed in (HIDDEN_REFERENCE, LOWPASS_ANCHOR):
            if needed not in systems:
                raise ValueError(f"trial {t['utt']}: stimuli {systems} lack {needed}")
    config = {"name": name, "trials": list(trials)}
    text = json.dumps(config, indent=1).replace("</", "<\\/")  # safe inside <script>
    template = resources.files("codectk.report").joinpath("mushra_template.html").read_text()
    path = Path(path)
    with atomic_write(path) as f:
        f.write(template.replace("/*CONFIG*/", text))
    return path
