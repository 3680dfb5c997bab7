"""What stage 7 writes beside the per-utterance scores: the codebook usage of a decoding
and the ``summary.txt`` rendering of a summary (:func:`codectk.eval.score.score`)."""

from __future__ import annotations

import logging
import math

from codectk.eval.metrics import COLUMNS
from codectk.io.codes import iter_codes, read_codes_meta
from codectk.metrics.codebook import codebook_usage

log = logging.getLogger("codectk.eval.score")


def codebook_summary(codes_scp, refs: dict, bitrate_kbps: float | None) -> dict:
    """Codebook usage of a ``codes.scp`` plus its nominal and entropy-coded bitrates.

    Args:
        codes_scp: the decoding's ``codes.scp``.
        refs (dict): the reference utterances (a warning names a mismatch).
        bitrate_kbps (float | None): the nominal bitrate given to stage 7, checked against
            K * log2(codebook size) * frame rate.

    Returns:
        dict: ``summary.json``'s ``codebook_usage``.
    """
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


def nan_to_none(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
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
        col = COLUMNS.get(name)
        unit, better = (col.unit, col.better) if col else ("-", "-")
        n = f"{s['n']}" + (f" (+{s['n_nan']} NaN)" if s["n_nan"] else "")
        pooled = f"; pooled {_fmt(s['pooled'])}" if s.get("pooled") is not None else ""
        lines.append(
            f"{name:<14} {unit:<8} {better:<7} {_fmt(s['mean']):>10} {_fmt(s['ci95']):>10}  "
            f"{n}{pooled}"
        )
    delay = summary.get("delay")
    if delay:
        d = delay["ms"]
        lines += [
            "",
            f"delay of the decoded signal (cross-correlation, within ±{delay['max_delay_ms']:g} "
            f"ms): {_fmt(d['mean'], '.3f')} ± {_fmt(d['ci95'], '.3f')} ms, compensated before "
            + ", ".join(delay["applied_to"]),
        ]
    cu = summary.get("codebook_usage")
    if cu is not None:
        lines += _format_usage(cu)
    rate = summary["bitrate_kbps"]
    lines += ["", f"nominal bitrate: {'not given' if rate is None else f'{rate:g} kbps'}"]
    return "\n".join(lines) + "\n"


def _format_usage(cu: dict) -> list[str]:
    lines = [
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
    return lines
