"""The metrics stage 7 can compute: names, the columns each writes, units, which
direction is better, the packages each needs, and how each is computed on one
utterance.

A *metric* is what ``--metrics`` selects (``pesq``, ``dnsmos``, ``wer`` ...); it writes
one or more *columns* of ``per_utt.tsv`` (``dnsmos`` writes ``dnsmos_sig``,
``dnsmos_bak``, ``dnsmos_ovrl`` and ``dnsmos_p808``; ``wer`` writes ``wer``, ``wer_ref``
and ``wer_delta``). Metrics whose package is missing cannot be selected; the default is
every metric whose package is installed (``wer`` and ``cer`` only with a transcript).
docs/evaluation.md describes each one, with its source.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from codectk.errors import CodectkError
from codectk.metrics import asr, dnsmos, speaker, visqol
from codectk.metrics.distance import log_mel_distance, si_sdr, stft_distance
from codectk.metrics.quality import estoi, pesq_wb, stoi

INSTALL = "tools/venv/bin/pip install -c tools/venv/constraints.txt {} (or: make install)"


class MetricUnavailableError(CodectkError, ValueError):
    """A requested metric whose package is not installed, or that needs a transcript."""


@dataclass(frozen=True)
class Column:
    """One ``per_utt.tsv`` column: its unit, which direction is better, its plot label and
    the range its values can take (None: unbounded on that side)."""

    unit: str
    better: str  # "higher" or "lower"
    label: str
    bounds: tuple[float | None, float | None] = (None, None)


MOS = (1.0, 5.0)
COLUMNS: dict[str, Column] = {
    "pesq": Column("MOS-LQO", "higher", "PESQ (wide-band MOS-LQO)", (1.0, 4.64)),
    "stoi": Column("0..1", "higher", "STOI", (0.0, 1.0)),
    "estoi": Column("0..1", "higher", "ESTOI", (None, 1.0)),
    "mel_distance": Column("log10", "lower", "mel distance (log10, lower is better)", (0.0, None)),
    "stft_distance": Column("-", "lower", "STFT distance (lower is better)", (0.0, None)),
    "si_sdr": Column("dB", "higher", "SI-SDR (dB)"),
    "visqol": Column("MOS-LQO", "higher", "ViSQOL v3 speech (MOS-LQO)", MOS),
    "dnsmos_sig": Column("MOS", "higher", "DNSMOS P.835 SIG", MOS),
    "dnsmos_bak": Column("MOS", "higher", "DNSMOS P.835 BAK", MOS),
    "dnsmos_ovrl": Column("MOS", "higher", "DNSMOS P.835 OVRL", MOS),
    "dnsmos_p808": Column("MOS", "higher", "DNSMOS P.808", MOS),
    "wer": Column("0..1", "lower", "WER of decoded speech (lower is better)", (0.0, None)),
    "wer_ref": Column("0..1", "lower", "WER of the references", (0.0, None)),
    "wer_delta": Column("0..1", "lower", "WER decoded - references (lower is better)"),
    "cer": Column("0..1", "lower", "CER of decoded speech (lower is better)", (0.0, None)),
    "cer_ref": Column("0..1", "lower", "CER of the references", (0.0, None)),
    "cer_delta": Column("0..1", "lower", "CER decoded - references (lower is better)"),
    "spk_sim": Column("cosine", "higher", "speaker similarity (cosine)", (0.0, 1.0)),
}


@dataclass
class Pair:
    """One utterance as the metrics see it, all at the reference rate ``fs``.

    Attributes:
        ref (np.ndarray): reference (T,) trimmed to the shorter of the two signals.
        deg (np.ndarray): decoded (T,) trimmed likewise.
        ref_full (np.ndarray): the whole reference (T_ref,).
        deg_full (np.ndarray): the whole decoded signal (T_deg,).
        ref_aligned (np.ndarray): reference after delay compensation (T_a,).
        deg_aligned (np.ndarray): decoded after delay compensation (T_a,).
        fs (int): sample rate in Hz.
        text (str | None): the transcript, None when there is none.
        asr (HypothesisCache): recognised references (and decodings) by audio content.
        threads (int): threads a metric may use.
        extras (dict): per-utterance facts beyond the columns (error counts, hypotheses).
    """

    ref: np.ndarray
    deg: np.ndarray
    ref_full: np.ndarray
    deg_full: np.ndarray
    ref_aligned: np.ndarray
    deg_aligned: np.ndarray
    fs: int
    text: str | None = None
    asr: asr.HypothesisCache = field(default_factory=asr.HypothesisCache)
    threads: int = 1
    extras: dict = field(default_factory=dict)


def _recognised(p: Pair) -> dict:
    """Recognise both signals once per utterance; error counts go to ``p.extras``."""
    if "asr" not in p.extras:
        if p.text is None or not asr.normalize(p.text):  # nothing to score against
            p.extras["asr"] = {"hyp_ref": "", "hyp_deg": "", "ref": None, "deg": None}
        else:
            hyp_ref = p.asr.transcribe(p.ref_full, p.fs)
            hyp_deg = p.asr.transcribe(p.deg_full, p.fs)
            e_ref, e_deg = asr.errors(p.text, hyp_ref), asr.errors(p.text, hyp_deg)
            p.extras["asr"] = {"hyp_ref": hyp_ref, "hyp_deg": hyp_deg, "ref": e_ref, "deg": e_deg}
    return p.extras["asr"]


def _rates(p: Pair, unit: str) -> dict[str, float]:
    r = _recognised(p)
    if r["ref"] is None:
        return {unit: math.nan, f"{unit}_ref": math.nan, f"{unit}_delta": math.nan}
    deg, ref = getattr(r["deg"], unit), getattr(r["ref"], unit)
    return {unit: deg, f"{unit}_ref": ref, f"{unit}_delta": deg - ref}


@dataclass(frozen=True)
class Metric:
    """A selectable metric.

    Attributes:
        name (str): its ``--metrics`` name.
        columns (tuple[str, ...]): the columns it writes (keys of :data:`COLUMNS`).
        compute (Callable[[Pair], dict[str, float]]): column -> value for one utterance.
        modules (tuple[str, ...]): modules it imports (checked without importing them).
        package (str): pip requirement(s) providing them, as pinned in requirements.txt.
        aligned (bool): compares samples: scored on the delay-compensated pair.
        needs_text (bool): needs the transcript (``--text``).
    """

    name: str
    columns: tuple[str, ...]
    compute: Callable[[Pair], dict[str, float]]
    modules: tuple[str, ...] = ()
    package: str = ""
    aligned: bool = False
    needs_text: bool = False

    def missing(self) -> list[str]:
        """Modules of :attr:`modules` that cannot be imported."""
        return [m for m in self.modules if importlib.util.find_spec(m) is None]


def _one(name: str, fn: Callable[[np.ndarray, np.ndarray, int], float], aligned=False):
    if aligned:
        return Metric(
            name, (name,), lambda p: {name: fn(p.ref_aligned, p.deg_aligned, p.fs)}, aligned=True
        )
    return Metric(name, (name,), lambda p: {name: fn(p.ref, p.deg, p.fs)})


def _error_rate(unit: str) -> Metric:
    """``wer`` or ``cer`` (``unit``): of the decoded speech, of the references, and the
    difference, from one recognition of each per utterance."""
    return Metric(
        unit,
        (unit, f"{unit}_ref", f"{unit}_delta"),
        lambda p: _rates(p, unit),
        modules=("pocketsphinx", "jiwer"),
        package="pocketsphinx==5.1.1 jiwer==4.0.0",
        needs_text=True,
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _one("pesq", pesq_wb),
        _one("stoi", stoi, aligned=True),
        _one("estoi", estoi, aligned=True),
        _one("mel_distance", log_mel_distance, aligned=True),
        _one("stft_distance", lambda r, d, fs: stft_distance(r, d), aligned=True),
        _one("si_sdr", lambda r, d, fs: si_sdr(r, d), aligned=True),
        Metric(
            "visqol",
            ("visqol",),
            lambda p: {"visqol": visqol.visqol_speech(p.ref, p.deg, p.fs)},
            modules=("visqol",),
            package="visqol-python==3.8.0",
        ),
        Metric(
            "dnsmos",
            dnsmos.COLUMNS,
            lambda p: dnsmos.dnsmos(p.deg_full, p.fs, p.threads),
            modules=("speechmos", "onnxruntime", "librosa"),
            package="speechmos==0.0.1.1 onnxruntime==1.32.0 librosa==0.11.0",
        ),
        _error_rate("wer"),
        _error_rate("cer"),
        Metric(
            "spk_sim",
            ("spk_sim",),
            lambda p: {"spk_sim": speaker.speaker_similarity(p.ref_full, p.deg_full, p.fs)},
            modules=("resemblyzer", "webrtcvad", "librosa"),
            package="Resemblyzer==0.1.4",
        ),
    )
}
ALIGNED_COLUMNS = tuple(c for m in METRICS.values() if m.aligned for c in m.columns)


def parse_metrics(spec: str) -> list[str]:
    """Parse a comma list of metric names (order kept, repeats dropped).

    Raises:
        ValueError: an empty list or an unknown name, listing the valid ones.
    """
    names = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics {unknown or spec!r} not supported; choose from {list(METRICS)}")
    return names


def default_metrics(have_text: bool) -> list[str]:
    """Every metric whose packages are installed (``wer``/``cer`` only ``have_text``)."""
    return [n for n, m in METRICS.items() if not m.missing() and (have_text or not m.needs_text)]


def check_metrics(names: list[str], have_text: bool) -> None:
    """Raise MetricUnavailableError for the first metric that cannot run.

    The message names the missing package and the command that installs it, or says
    that the metric needs ``--text``.
    """
    for n in names:
        m = METRICS[n]
        missing = m.missing()
        if missing:
            raise MetricUnavailableError(
                f"metric {n} needs {', '.join(missing)} (not installed): "
                + INSTALL.format(m.package)
            )
        if m.needs_text and not have_text:
            raise MetricUnavailableError(
                f"metric {n} needs the transcripts: give --text (the data dir's Kaldi text file)"
            )


def columns(names: list[str]) -> list[str]:
    """The columns written by metrics ``names``, in order."""
    return [c for n in names for c in METRICS[n].columns]


def better(column: str) -> str:
    """``higher`` or ``lower`` (``higher`` for a column this version does not know)."""
    return COLUMNS[column].better if column in COLUMNS else "higher"
