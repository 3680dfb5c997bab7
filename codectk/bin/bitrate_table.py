"""One table over bitrates from the stage-7 scores of one experiment decoded at several
bandwidths (``codec.sh --decode_bandwidths "1.5 3 6"``).

Usage::

    python -m codectk.bin.bitrate_table exp/codec_x/scores/test_1.5kbps \\
        exp/codec_x/scores/test_3kbps ... --out exp/codec_x/scores/test_bitrates

Reads each folder's ``summary.json`` and writes ``<out>.tsv`` (header ``bitrate_kbps
n_utts <metric>_mean <metric>_ci95 ... codebook_utilisation``, a row per folder in
increasing bitrate) and ``<out>.txt`` (the same as an aligned table, also printed).
The metrics are those of the first summary, in its order (every column stage 7 wrote,
e.g. ``visqol``, ``dnsmos_ovrl``, ``wer``, ``wer_ref``, ``wer_delta``, ``spk_sim``); WER
and CER columns add ``<metric>_pooled`` (errors summed over utterances / words summed);
``delay_ms`` is the mean delay compensated before the sample-aligned metrics (``-``
when it was not). ``codebook_utilisation`` is the mean over codebooks of entropy /
log2(codebook size) (:mod:`codectk.metrics.codebook`), ``-`` when the scores hold no
codebook usage.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.io.fileio import atomic_write


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.4g}"


def read_summaries(score_dirs: list[str | Path]) -> list[dict]:
    """Read ``summary.json`` of each folder, sorted by ``bitrate_kbps``.

    Raises:
        FileNotFoundError: a folder without ``summary.json`` (run stage 7 first).
        ValueError: a summary without ``bitrate_kbps``.
    """
    out = []
    for d in score_dirs:
        path = Path(d) / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (run stage 7 first)")
        s = json.loads(path.read_text())
        if s.get("bitrate_kbps") is None:
            raise ValueError(f"{path}: no bitrate_kbps (scored without --bitrate_kbps)")
        out.append(s)
    return sorted(out, key=lambda s: s["bitrate_kbps"])


def bitrate_rows(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows (strings) for summaries sorted by bitrate."""
    metrics = list(summaries[0].get("metrics", []))
    pooled = [m for m in metrics if any("pooled" in (s.get(m) or {}) for s in summaries)]
    header = ["bitrate_kbps", "n_utts"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_ci95"] + ([f"{m}_pooled"] if m in pooled else [])
    header += ["delay_ms", "codebook_utilisation"]
    rows = []
    for s in summaries:
        row = [_fmt(s["bitrate_kbps"]), str(s.get("n_utts", ""))]
        for m in metrics:
            v = s.get(m) or {}
            row += [_fmt(v.get("mean")), _fmt(v.get("ci95"))]
            row += [_fmt(v.get("pooled"))] if m in pooled else []
        delay = ((s.get("delay") or {}).get("ms") or {}).get("mean", "-")
        row.append(delay if delay == "-" else _fmt(delay))
        usage = (s.get("codebook_usage") or {}).get("mean_over_codebooks") or {}
        row.append(_fmt(usage["utilisation"]) if "utilisation" in usage else "-")
        rows.append(row)
    return header, rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("score_dirs", nargs="+", help="stage-7 folders holding summary.json")
    p.add_argument("--out", required=True, help="output path without extension")
    args = p.parse_args(argv)
    try:
        summaries = read_summaries(args.score_dirs)
    except (FileNotFoundError, ValueError) as exc:
        p.error(str(exc))
    header, rows = bitrate_rows(summaries)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out.with_name(out.name + ".tsv")) as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    text = "\n".join(lines) + "\n"
    with atomic_write(out.with_name(out.name + ".txt")) as f:
        f.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
