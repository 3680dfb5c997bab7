"""Stage 7: score decoded waveforms against their references.

Usage::

    python -m codectk.bin.score --ref_scp dump/raw/test/wav.scp \\
        --deg_scp exp/codec_x/decode_test/wav.scp --out_dir exp/codec_x/scores/test \\
        [--codes_scp exp/codec_x/decode_test/codes.scp] [--bitrate_kbps 6.0] \\
        [--metrics pesq,stoi,estoi,mel_distance,stft_distance,si_sdr] [--nj 4]

Per utterance both signals are read as mono; the decoded one is resampled to the
reference rate when they differ, and both are trimmed to the shorter length. Writes
(atomically) to ``out_dir``:

* ``per_utt.tsv``: header ``utt<TAB><metric>...``, one row per utterance in
  ``LC_ALL=C`` order, values with 6 significant digits (``nan`` when unscorable);
* ``summary.json``: ``{"format_version": 1, "n_utts", "bitrate_kbps", "metrics": [...],
  "<metric>": {"mean", "ci95", "n", "n_nan"}, ..., "codebook_usage": {...}}`` (NaN
  written as null; ``codebook_usage`` only with ``--codes_scp``);
* ``summary.txt``: the same as a table (also printed to stdout).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from codectk.audio import AudioError, read_audio, resample, to_mono
from codectk.bin.common import parser, run, setup_logging
from codectk.codes import iter_codes, read_codes_meta
from codectk.datadir import read_scp
from codectk.fileio import atomic_write
from codectk.metrics.codebook import codebook_usage
from codectk.metrics.distance import log_mel_distance, si_sdr, stft_distance
from codectk.metrics.quality import estoi, pesq_wb, stoi
from codectk.metrics.summary import describe

log = logging.getLogger("codectk.bin.score")

SUMMARY_FORMAT_VERSION = 1
LENGTH_TOLERANCE = 0.01  # relative length difference above which a warning is logged

# name -> (function(ref, deg, fs) -> float, unit, which direction is better)
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, int], float], str, str]] = {
    "pesq": (pesq_wb, "MOS-LQO", "higher"),
    "stoi": (stoi, "0..1", "higher"),
    "estoi": (estoi, "0..1", "higher"),
    "mel_distance": (log_mel_distance, "log10", "lower"),
    "stft_distance": (lambda ref, deg, fs: stft_distance(ref, deg), "-", "lower"),
    "si_sdr": (lambda ref, deg, fs: si_sdr(ref, deg), "dB", "higher"),
}


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


def _score_job(job: tuple) -> tuple[str, dict[str, float], list[str], tuple[int, int] | None]:
    """Score one utterance: (utt, ref spec, deg spec, ref_scp, deg_scp, metric names)."""
    utt, ref_spec, deg_spec, ref_scp, deg_scp, names = job
    ref, fs = read_audio(ref_spec, where=f"{ref_scp}: {utt}")
    deg, fs_deg = read_audio(deg_spec, where=f"{deg_scp}: {utt}")
    ref, deg = to_mono(ref), to_mono(deg)  # (C, T) -> (T,)
    resampled = None
    if fs_deg != fs:
        deg = resample(deg, fs_deg, fs)
        resampled = (fs_deg, fs)
    notes = []
    if abs(ref.size - deg.size) > LENGTH_TOLERANCE * ref.size:
        notes.append(
            f"{utt}: lengths differ by more than {LENGTH_TOLERANCE:.0%}: ref {ref.size}, "
            f"deg {deg.size} samples at {fs} Hz; trimming to the shorter"
        )
    n = min(ref.size, deg.size)
    ref, deg = ref[:n], deg[:n]
    values = {}
    for name in names:
        values[name] = float(METRICS[name][0](ref, deg, fs))
        if math.isnan(values[name]):
            notes.append(f"{utt}: {name} could not be computed (NaN)")
    return utt, values, notes, resampled


def _init_worker(verbose: bool) -> None:
    import torch

    torch.set_num_threads(1)
    setup_logging(verbose)


def score(
    ref_scp: str | Path,
    deg_scp: str | Path,
    out_dir: str | Path,
    metrics: Sequence[str] = tuple(METRICS),
    codes_scp: str | Path | None = None,
    bitrate_kbps: float | None = None,
    nj: int = 1,
) -> dict:
    """Score every utterance of ``ref_scp`` and write ``per_utt.tsv``, ``summary.json``
    and ``summary.txt`` to ``out_dir``.

    Args:
        ref_scp: reference ``wav.scp`` (e.g. ``dump/raw/test/wav.scp``).
        deg_scp: decoded ``wav.scp``; must hold every utterance of ``ref_scp``.
        out_dir: output folder (created).
        metrics: names among :data:`METRICS`, in column order.
        codes_scp: ``codes.scp`` of the decoding, for codebook usage (optional).
        bitrate_kbps (float | None): the model's nominal bitrate in kbps, reported as is.
        nj (int): parallel worker processes over utterances.

    Returns:
        dict: the content of ``summary.json``.

    Raises:
        ValueError: utterances of ``ref_scp`` missing from ``deg_scp`` (naming them and
            both files), an unknown metric, ``nj < 1``, or a malformed scp.
        codectk.audio.AudioError: an unreadable waveform.
    """
    t0 = time.perf_counter()
    metrics = list(metrics)
    parse_metrics(",".join(metrics))
    if nj < 1:
        raise ValueError(f"nj {nj} must be >= 1")
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
    utts = sorted(refs, key=lambda u: u.encode("utf-8"))  # LC_ALL=C order
    jobs = [(u, refs[u], degs[u], str(ref_scp), str(deg_scp), metrics) for u in utts]
    usage = _codebook_summary(codes_scp, refs, bitrate_kbps) if codes_scp else None
    codes_note = f", codes {codes_scp} ({usage['n_frames']} frames)" if usage else ""
    log.info("read %d utterances: ref %s, deg %s%s", len(utts), ref_scp, deg_scp, codes_note)

    rows: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    rates: dict[tuple[int, int], int] = {}
    bar = {"total": len(jobs), "desc": "score", "unit": "utt", "file": sys.stderr}
    if nj == 1 or len(jobs) <= 1:
        results = tqdm(map(_score_job, jobs), **bar)
        _collect(results, rows, notes, rates)
    else:
        ctx = mp.get_context("spawn")  # safe with torch; workers use one thread each
        with ctx.Pool(min(nj, len(jobs)), _init_worker, (log.isEnabledFor(logging.DEBUG),)) as pool:
            _collect(tqdm(pool.imap(_score_job, jobs), **bar), rows, notes, rates)
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

    summary: dict = {
        "format_version": SUMMARY_FORMAT_VERSION,
        "ref_scp": str(ref_scp),
        "deg_scp": str(deg_scp),
        "n_utts": len(utts),
        "bitrate_kbps": None if bitrate_kbps is None else float(bitrate_kbps),
        "metrics": metrics,
    }
    for name in metrics:
        summary[name] = describe(rows[u][name] for u in utts)
    if usage is not None:
        summary["codebook_usage"] = usage
    out = Path(out_dir)
    with atomic_write(out / "per_utt.tsv") as f:
        f.write("\t".join(["utt", *metrics]) + "\n")
        for u in utts:
            f.write("\t".join([u, *(f"{rows[u][m]:.6g}" for m in metrics)]) + "\n")
    with atomic_write(out / "summary.json") as f:
        json.dump(_nan_to_none(summary), f, indent=2)
        f.write("\n")
    text = format_summary(summary)
    with atomic_write(out / "summary.txt") as f:
        f.write(text)
    log.info("wrote %s, %s, %s", out / "per_utt.tsv", out / "summary.json", out / "summary.txt")
    log.info(
        "scored %d utterances x %d metrics in %.1f s (nj=%d)",
        len(utts),
        len(metrics),
        time.perf_counter() - t0,
        nj,
    )
    return summary


def _codebook_summary(codes_scp, refs: dict, bitrate_kbps: float | None) -> dict:
    """Codebook usage of a ``codes.scp`` plus its nominal and entropy-coded bitrates."""
    meta = read_codes_meta(codes_scp)
    code_utts: list[str] = []

    def _codes():
        for utt, codes in iter_codes(codes_scp):
            code_utts.append(utt)
            yield codes  # (K, F)

    usage = codebook_usage(_codes(), meta["codebook_size"])
    if set(code_utts) != set(refs):
        log.warning(
            "%s holds %d utterances, the reference %d; codebook usage covers the codes file",
            codes_scp,
            len(code_utts),
            len(refs),
        )
    frame_rate = float(meta["frame_rate"])
    nominal = usage.n_codebooks * math.log2(usage.codebook_size) * frame_rate / 1000.0
    if bitrate_kbps is not None and abs(nominal - bitrate_kbps) > 0.01 * bitrate_kbps:
        log.warning(
            "--bitrate_kbps %.3f differs from K * log2(codebook_size) * frame_rate "
            "= %.3f kbps of %s",
            bitrate_kbps,
            nominal,
            codes_scp,
        )
    out = {
        "codes_scp": str(codes_scp),
        "frame_rate": frame_rate,
        "codes_bitrate_kbps": nominal,
        "entropy_bitrate_kbps": usage.entropy_bitrate_kbps(frame_rate),
        **usage.to_dict(),
    }
    group = int(meta.get("codebooks_per_stream", 1))  # absent in codes.json before v1.1
    if group > 1:
        out["codebooks_per_stream"] = group
        out["per_stream"] = usage.per_stream(group)
    return out


def _collect(results, rows: dict, notes: list, rates: dict) -> None:
    for utt, values, utt_notes, resampled in results:
        rows[utt] = values
        notes.extend(utt_notes)
        if resampled:
            rates[resampled] = rates.get(resampled, 0) + 1


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "nan" if x is None or math.isnan(x) else format(x, spec)


def format_summary(summary: dict) -> str:
    """Render a summary dict (as :func:`score` returns) as the ``summary.txt`` table."""
    lines = [
        f"scores of {summary['deg_scp']} against {summary['ref_scp']} "
        f"({summary['n_utts']} utterances)",
        "",
        f"{'metric':<14} {'unit':<8} {'better':<7} {'mean':>10} {'±95% CI':>10}  N",
    ]
    for name in summary["metrics"]:
        s = summary[name]
        _, unit, better = METRICS[name]
        n = f"{s['n']}" + (f" (+{s['n_nan']} NaN)" if s["n_nan"] else "")
        lines.append(
            f"{name:<14} {unit:<8} {better:<7} {_fmt(s['mean']):>10} {_fmt(s['ci95']):>10}  {n}"
        )
    cu = summary.get("codebook_usage")
    if cu is not None:
        lines += [
            "",
            f"codebook usage: {cu['codes_scp']} (K={cu['n_codebooks']}, "
            f"codebook_size={cu['codebook_size']}, {cu['n_frames']} frames "
            f"at {cu['frame_rate']:g} Hz)",
            f"{'codebook':<10} {'entropy (bits)':>14} {'utilisation':>12} {'used':>8}",
        ]
        rows = [(str(r["codebook"]), r) for r in cu["per_codebook"]] + [
            ("mean", cu["mean_over_codebooks"])
        ]
        for label, r in rows:
            lines.append(
                f"{label:<10} {r['entropy_bits']:>14.3f} {r['utilisation']:>12.3f} "
                f"{r['fraction_used']:>8.1%}"
            )
        if "per_stream" in cu:
            lines.append(f"{'stream':<10} {'entropy (bits)':>14} {'utilisation':>12}  codebooks")
            for r in cu["per_stream"]:
                books = ",".join(str(k) for k in r["codebooks"])
                lines.append(
                    f"{r['stream']:<10} {r['entropy_bits']:>14.3f} {r['utilisation']:>12.3f}  {books}"
                )
        lines.append(
            f"entropy-coded bound {cu['entropy_bitrate_kbps']:.3f} kbps; "
            f"codes K * log2(size) * frame_rate = {cu['codes_bitrate_kbps']:.3f} kbps"
        )
    rate = summary["bitrate_kbps"]
    lines += ["", f"nominal bitrate: {'not given' if rate is None else f'{rate:g} kbps'}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--ref_scp", required=True, help="reference wav.scp")
    p.add_argument("--deg_scp", required=True, help="decoded wav.scp")
    p.add_argument("--out_dir", required=True, help="output folder")
    p.add_argument("--codes_scp", default=None, help="codes.scp of the decoding (optional)")
    p.add_argument("--bitrate_kbps", type=float, default=None, help="nominal bitrate in kbps")
    p.add_argument("--metrics", default=",".join(METRICS), help="comma list (default: %(default)s)")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (default: 1)")
    args = p.parse_args(argv)
    setup_logging()
    try:
        metrics = parse_metrics(args.metrics)
    except ValueError as exc:
        p.error(str(exc))
    if args.nj < 1:
        p.error(f"--nj {args.nj} must be >= 1")
    try:
        summary = score(
            args.ref_scp,
            args.deg_scp,
            args.out_dir,
            metrics,
            args.codes_scp,
            args.bitrate_kbps,
            args.nj,
        )
    except (ValueError, AudioError) as exc:  # missing ids, DataDirError, unreadable audio
        log.error("%s", exc)
        return 1
    sys.stdout.write(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
