"""Stage 7 scoring: decoded waveforms against their references, per utterance and summed up.

:func:`score` reads a reference and a decoded ``wav.scp`` (and optionally the
transcripts ``text`` and the ``codes.scp`` of the decoding). Per utterance both signals
are read as mono; the decoded one is resampled to the reference rate when they differ.
Metrics that compare two signals see both trimmed to the shorter length; the
sample-aligned ones (STOI, ESTOI, SI-SDR, mel and STFT distance) see them after delay
compensation when ``max_delay_ms > 0`` (:mod:`codectk.metrics.align`); DNSMOS, the
recogniser and the speaker encoder see each whole signal. Each metric resamples to its
own rate (:mod:`codectk.eval.metrics`, docs/evaluation.md). Writes (atomically) to
``out_dir``:

* ``per_utt.tsv``: header ``utt<TAB><column>...[<TAB>delay_ms]``, one row per utterance
  in ``LC_ALL=C`` order, values with 6 significant digits (``nan`` when unscorable);
  ``delay_ms`` (the decoded signal's delay found, positive when it lags) only with
  delay compensation;
* ``summary.json``: ``{"format_version": 1, "n_utts", "bitrate_kbps", "metrics":
  [<column>...], "metric_names": [...], "<column>": {"mean", "ci95", "n", "n_nan"}, ...,
  "delay": {...}, "codebook_usage": {...}, "seconds": {...}}``; WER/CER columns add
  ``"pooled"`` (errors over words summed over utterances); NaN written as null;
* ``summary.txt``: the same as a table (also printed by the CLI);
* ``asr.tsv`` with ``wer``/``cer``: ``utt<TAB>text<TAB>hyp_ref<TAB>hyp_deg``.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from codectk.eval.metrics import (
    ALIGNED_COLUMNS,
    METRICS,
    Pair,
    check_metrics,
    columns,
    default_metrics,
    parse_metrics,
)
from codectk.eval.summary import codebook_summary, format_summary, nan_to_none
from codectk.io.audio import read_audio, resample, to_mono
from codectk.io.datadir import read_scp
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging
from codectk.metrics import align
from codectk.metrics.asr import HypothesisCache
from codectk.metrics.summary import describe

log = logging.getLogger("codectk.eval.score")

__all__ = ["METRICS", "format_summary", "parse_metrics", "score"]

SUMMARY_FORMAT_VERSION = 1
LENGTH_TOLERANCE = 0.01  # relative length difference above which a warning is logged


@dataclass(frozen=True)
class _Job:
    utt: str
    ref_spec: str
    deg_spec: str
    ref_scp: str
    deg_scp: str
    names: tuple[str, ...]
    text: str | None
    max_delay_ms: float


@dataclass
class _Result:
    utt: str
    values: dict[str, float]
    notes: list[str]
    resampled: tuple[int, int] | None
    delay_ms: float
    asr: dict | None
    new_hyps: dict[str, str]
    seconds: dict[str, float]


_STATE: dict = {"asr": None, "threads": 1}  # per process: the hypothesis cache, threads


def _score_job(job: _Job) -> _Result:
    """Score one utterance."""
    ref, fs = read_audio(job.ref_spec, where=f"{job.ref_scp}: {job.utt}")
    deg, fs_deg = read_audio(job.deg_spec, where=f"{job.deg_scp}: {job.utt}")
    ref, deg = to_mono(ref), to_mono(deg)  # (C, T) -> (T,)
    resampled = None
    if fs_deg != fs:
        deg = resample(deg, fs_deg, fs)
        resampled = (fs_deg, fs)
    notes = []
    if abs(ref.size - deg.size) > LENGTH_TOLERANCE * ref.size:
        notes.append(
            f"{job.utt}: lengths differ by more than {LENGTH_TOLERANCE:.0%}: ref {ref.size}, "
            f"deg {deg.size} samples at {fs} Hz; trimming to the shorter"
        )
    n = min(ref.size, deg.size)
    delay = 0.0
    ref_al, deg_al = ref[:n], deg[:n]
    if job.max_delay_ms > 0 and any(METRICS[m].aligned for m in job.names):
        delay, _ = align.estimate_delay(ref, deg, fs, job.max_delay_ms)
        ref_al, deg_al = align.compensate(ref, deg, delay)
    cache = _STATE["asr"] if _STATE["asr"] is not None else HypothesisCache()
    pair = Pair(ref[:n], deg[:n], ref, deg, ref_al, deg_al, fs, job.text, cache, _STATE["threads"])
    values: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for name in job.names:
        t0 = time.perf_counter()
        out = {col: float(v) for col, v in METRICS[name].compute(pair).items()}
        values.update(out)
        nan = [col for col, v in out.items() if math.isnan(v)]
        if nan:
            notes.append(f"{job.utt}: {', '.join(nan)} could not be computed (NaN)")
        seconds[name] = time.perf_counter() - t0
    new_hyps, cache.new = cache.new, {}
    asr = pair.extras.get("asr")
    return _Result(job.utt, values, notes, resampled, delay * 1000 / fs, asr, new_hyps, seconds)


def _init_worker(verbose: bool, cache: dict[str, str]) -> None:
    os.environ["NUMBA_NUM_THREADS"] = "1"  # ViSQOL's and librosa's numba kernels
    import torch

    torch.set_num_threads(1)
    setup_logging(verbose)
    _STATE["asr"] = HypothesisCache()
    _STATE["asr"].entries.update(cache)
    _STATE["threads"] = 1


def score(
    ref_scp: str | Path,
    deg_scp: str | Path,
    out_dir: str | Path,
    metrics: Sequence[str] | None = None,
    codes_scp: str | Path | None = None,
    bitrate_kbps: float | None = None,
    nj: int = 1,
    text: str | Path | None = None,
    max_delay_ms: float = 0.0,
    cache_dir: str | Path | None = None,
) -> dict:
    """Score every utterance of ``ref_scp`` and write ``per_utt.tsv``, ``summary.json``
    and ``summary.txt`` (and ``asr.tsv``) to ``out_dir`` (module docstring).

    Args:
        ref_scp: reference ``wav.scp`` (e.g. ``dump/raw/test/wav.scp``).
        deg_scp: decoded ``wav.scp``; must hold every utterance of ``ref_scp``.
        out_dir: output folder (created).
        metrics: names among :data:`~codectk.eval.metrics.METRICS`, in column order;
            None: :func:`~codectk.eval.metrics.default_metrics`.
        codes_scp: ``codes.scp`` of the decoding, for codebook usage (optional).
        bitrate_kbps (float | None): the model's nominal bitrate in kbps, reported as is.
        nj (int): parallel worker processes over utterances.
        text: Kaldi ``text`` of the references (``<utt> <transcript>``), for WER/CER.
        max_delay_ms (float): search range of delay compensation in ms (0: off).
        cache_dir: folder keeping recognised references between runs (None: none).

    Returns:
        dict: the content of ``summary.json``.

    Raises:
        ValueError: utterances of ``ref_scp`` missing from ``deg_scp`` (naming them and
            both files), an unknown metric, ``nj < 1``, ``max_delay_ms < 0``, or a
            malformed scp.
        codectk.eval.metrics.MetricUnavailableError: a metric whose package is missing,
            or WER/CER without ``text``.
        codectk.io.audio.AudioError: an unreadable waveform.
    """
    t0 = time.perf_counter()
    names = default_metrics(text is not None) if metrics is None else list(metrics)
    parse_metrics(",".join(names))
    check_metrics(names, text is not None)
    if nj < 1:
        raise ValueError(f"nj {nj} must be >= 1")
    if max_delay_ms < 0:
        raise ValueError(f"max_delay_ms {max_delay_ms} must be >= 0")
    cols = columns(names)
    refs, degs = read_scp(ref_scp), read_scp(deg_scp)
    missing = [u for u in refs if u not in degs]
    if missing:
        shown = " ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise ValueError(
            f"{len(missing)} of {len(refs)} utterance(s) of {ref_scp} missing from "
            f"{deg_scp}: {shown} (decode them, or score a subset of the reference)"
        )
    extra = [u for u in degs if u not in refs]
    if extra:
        log.warning(
            "%d utterance(s) of %s not in %s, ignored: %s", len(extra), deg_scp, ref_scp, extra[:5]
        )
    texts = read_scp(text, allow_empty_value=True) if text is not None else {}
    no_text = [u for u in refs if u not in texts] if text is not None else []
    if no_text:
        log.warning(
            "%d utterance(s) have no line in %s (WER/CER NaN): %s", len(no_text), text, no_text[:5]
        )
    align_on = max_delay_ms > 0 and any(METRICS[n].aligned for n in names)
    utts = sorted(refs, key=lambda u: u.encode("utf-8"))  # LC_ALL=C order
    delay_ms = max_delay_ms if align_on else 0.0
    jobs = [
        _Job(u, refs[u], degs[u], str(ref_scp), str(deg_scp), tuple(names), texts.get(u), delay_ms)
        for u in utts
    ]
    usage = codebook_summary(codes_scp, refs, bitrate_kbps) if codes_scp else None
    codes_note = f", codes {codes_scp} ({usage['n_frames']} frames)" if usage else ""
    log.info(
        "read %d utterances: ref %s, deg %s%s; metrics %s%s",
        len(utts),
        ref_scp,
        deg_scp,
        codes_note,
        ",".join(names),
        f"; delay compensation within +-{max_delay_ms:g} ms" if align_on else "",
    )

    cache = HypothesisCache(cache_dir)
    bar = {"total": len(jobs), "desc": "score", "unit": "utt", "file": sys.stderr}
    if nj == 1 or len(jobs) <= 1:
        import torch

        _STATE["asr"], _STATE["threads"] = cache, torch.get_num_threads()
        try:
            results = list(tqdm(map(_score_job, jobs), **bar))
        finally:
            _STATE["asr"], _STATE["threads"] = None, 1
    else:
        ctx = mp.get_context("spawn")  # safe with torch; workers use one thread each
        init = (log.isEnabledFor(logging.DEBUG), cache.entries)
        with ctx.Pool(min(nj, len(jobs)), _init_worker, init) as pool:
            results = list(tqdm(pool.imap(_score_job, jobs), **bar))
    for r in results:
        cache.entries.update(r.new_hyps)
        cache.new.update(r.new_hyps)
    cache.save()
    _log_notes(results, deg_scp)

    rows = {r.utt: r.values for r in results}
    summary: dict = {
        "format_version": SUMMARY_FORMAT_VERSION,
        "ref_scp": str(ref_scp),
        "deg_scp": str(deg_scp),
        "n_utts": len(utts),
        "bitrate_kbps": None if bitrate_kbps is None else float(bitrate_kbps),
        "metrics": cols,
        "metric_names": names,
    }
    for c in cols:
        summary[c] = describe(rows[u][c] for u in utts)
    _pool_error_rates(summary, results, cols)
    if text is not None:
        summary["text"] = str(text)
    if align_on:
        summary["delay"] = {
            "max_delay_ms": float(max_delay_ms),
            "applied_to": [c for c in cols if c in ALIGNED_COLUMNS],
            "ms": describe(r.delay_ms for r in results),
        }
    if usage is not None:
        summary["codebook_usage"] = usage
    summary["seconds"] = {n: round(sum(r.seconds[n] for r in results), 3) for n in names} | {
        "total": round(time.perf_counter() - t0, 3)
    }
    _write(Path(out_dir), summary, results, cols, align_on, texts)
    log.info(
        "scored %d utterances x %d metrics in %.1f s (nj=%d)",
        len(utts),
        len(names),
        time.perf_counter() - t0,
        nj,
    )
    return summary


def _log_notes(results: list[_Result], deg_scp) -> None:
    rates: dict[tuple[int, int], int] = {}
    notes = [n for r in results for n in r.notes]
    for r in results:
        if r.resampled:
            rates[r.resampled] = rates.get(r.resampled, 0) + 1
    for (fs_in, fs_out), n in rates.items():
        log.warning(
            "%d utterance(s) of %s at %d Hz resampled to the reference %d Hz",
            n,
            deg_scp,
            fs_in,
            fs_out,
        )
    for note in notes[:20]:
        log.warning("%s", note)
    if len(notes) > 20:
        log.warning("... and %d more warnings like these", len(notes) - 20)


def _pool_error_rates(summary: dict, results: list[_Result], cols: list[str]) -> None:
    """Add ``pooled`` (summed errors / summed words or characters) to WER/CER columns."""
    counts = [r.asr for r in results if r.asr is not None and r.asr["ref"] is not None]
    for unit, err, size in (("wer", "word_errors", "words"), ("cer", "char_errors", "chars")):
        if unit not in cols or not counts:
            continue
        total = sum(getattr(c["deg"], size) for c in counts)
        pooled = {
            side: sum(getattr(c[side], err) for c in counts) / total for side in ("deg", "ref")
        }
        summary[unit]["pooled"] = pooled["deg"]
        summary[f"{unit}_ref"]["pooled"] = pooled["ref"]
        summary[f"{unit}_delta"]["pooled"] = pooled["deg"] - pooled["ref"]


def _write(out: Path, summary: dict, results, cols, align_on: bool, texts: dict) -> None:
    with atomic_write(out / "per_utt.tsv") as f:
        f.write("\t".join(["utt", *cols] + (["delay_ms"] if align_on else [])) + "\n")
        for r in results:
            cells = [f"{r.values[c]:.6g}" for c in cols]
            cells += [f"{r.delay_ms:.6g}"] if align_on else []
            f.write("\t".join([r.utt, *cells]) + "\n")
    if any(r.asr is not None for r in results):
        with atomic_write(out / "asr.tsv") as f:
            f.write("utt\ttext\thyp_ref\thyp_deg\n")
            for r in results:
                a = r.asr or {"hyp_ref": "", "hyp_deg": ""}
                f.write(f"{r.utt}\t{texts.get(r.utt, '')}\t{a['hyp_ref']}\t{a['hyp_deg']}\n")
    with atomic_write(out / "summary.json") as f:
        json.dump(nan_to_none(summary), f, indent=2)
        f.write("\n")
    with atomic_write(out / "summary.txt") as f:
        f.write(format_summary(summary))
    written = ", ".join(str(out / n) for n in ("per_utt.tsv", "summary.json", "summary.txt"))
    log.info("wrote %s", written)
