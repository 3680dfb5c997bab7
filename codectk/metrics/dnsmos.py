"""DNSMOS: non-intrusive predicted MOS of the decoded speech alone (``speechmos``).

* P.835 (SIG, BAK, OVRL): C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS P.835: A
  Non-Intrusive Perceptual Objective Speech Quality Metric to Evaluate Noise
  Suppressors", ICASSP 2022. Speech signal quality, background noise quality and overall
  quality, each on the 1-5 scale of ITU-T P.835.
* P.808: C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS: A Non-Intrusive Perceptual
  Objective Speech Quality Metric to Evaluate Noise Suppressors", ICASSP 2021; one
  overall MOS on the 1-5 scale of ITU-T P.808.

The ONNX models are the Deep Noise Suppression challenge's (``sig_bak_ovr.onnx`` and
``model_v8.onnx``) as shipped inside the ``speechmos`` 0.0.1.1 wheel; ``speechmos`` runs
them as the challenge's ``dnsmos_local.py`` does: 16 kHz input, 9.01 s windows hopped by
1 s (a clip shorter than 9.01 s is repeated end to end until it is long enough), the
P.835 outputs mapped by the challenge's third-order polynomials, every score averaged
over windows. codectk only builds the ONNX Runtime sessions itself (CPU provider,
``threads`` intra-op threads) and resamples to 16 kHz with soxr.

Minimum length: 1 s (shorter clips would be looped many times over). NaN, with a logged
warning, for shorter or all-zero signals. Samples outside [-1, 1] are clipped (DNSMOS
refuses them).
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np

from codectk.io.audio import resample

log = logging.getLogger(__name__)

DNSMOS_FS = 16000  # Hz
MIN_SECONDS = 1.0
COLUMNS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
_KEYS = ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos")  # speechmos's names, same order


@functools.cache
def _model(threads: int):
    import onnxruntime as ort
    from speechmos import dnsmos as _dnsmos

    class _DNSMOS(_dnsmos.DNSMOS):
        """speechmos's DNSMOS with sessions on the CPU provider and a set thread count."""

        def __init__(self, primary: Path, p808: Path) -> None:  # replaces theirs
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            cpu = ["CPUExecutionProvider"]
            self.primary_model_path = str(primary)
            self.onnx_sess = ort.InferenceSession(str(primary), opts, providers=cpu)
            self.p808_onnx_sess = ort.InferenceSession(str(p808), opts, providers=cpu)

    models = Path(_dnsmos.__file__).parent / "dnsmos_models"
    return _DNSMOS(models / "sig_bak_ovr.onnx", models / "model_v8.onnx")


def dnsmos(deg: np.ndarray, fs: int, threads: int = 1) -> dict[str, float]:
    """DNSMOS P.835 and P.808 of one waveform (module docstring).

    Args:
        deg (np.ndarray): waveform (T,), float in [-1, 1], at fs Hz.
        fs (int): sample rate in Hz.
        threads (int): ONNX Runtime intra-op threads (one session pair per value).

    Returns:
        dict: ``{"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}``, each a MOS
        in about [1, 5] (higher is better), or all NaN with a logged warning.

    Raises:
        ValueError: a signal that is not 1-D, empty or non-finite, or ``fs <= 0``.
    """
    deg = np.asarray(deg)
    if deg.ndim != 1 or deg.size == 0 or not np.isfinite(deg).all():
        raise ValueError(f"deg must be a non-empty finite 1-D waveform, got {deg.shape}")
    if fs <= 0:
        raise ValueError(f"sample rate {fs} Hz must be positive")
    nan = dict.fromkeys(COLUMNS, math.nan)
    x = np.clip(resample(deg.astype(np.float32), fs, DNSMOS_FS), -1.0, 1.0)
    if x.size < MIN_SECONDS * DNSMOS_FS:
        log.warning("DNSMOS needs %.1f s, got %.3f s: scoring NaN", MIN_SECONDS, x.size / DNSMOS_FS)
        return nan
    if not np.any(x):
        log.warning("DNSMOS: the signal is all zeros: scoring NaN")
        return nan
    out = _model(max(1, int(threads)))(x.astype(np.float32), DNSMOS_FS, False)
    return {c: float(out[k]) for c, k in zip(COLUMNS, _KEYS)}
