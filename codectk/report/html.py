"""The report's ``index.html``: a static page (no scripts, no network) that works from the
file system: rate-distortion tables (mean ± 95% CI per metric, with its unit and which
direction is better, and the delay compensated before the sample-aligned metrics where
stage 7 did so) and plots, then per utterance a spectrogram comparison and an audio
player for the reference, every model point and every anchor. All paths in it are
relative to its folder.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from codectk.eval.metrics import COLUMNS
from codectk.io.fileio import atomic_write
from codectk.report.rd import Point, systems, table_metrics
from codectk.version import __version__

_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
audio { height: 2em; vertical-align: middle; }
"""


def _rel(path: Path, root: Path) -> str:
    return escape(path.relative_to(root).as_posix(), quote=True)


def _metric_cell(p: Point, metric: str) -> str:
    mean, ci = p.metric(metric)
    if math.isnan(mean):
        return '<td class="num">nan</td>'
    ci_txt = "" if math.isnan(ci) else f" ± {ci:.3f}"
    return f'<td class="num">{mean:.3f}{ci_txt}</td>'


def _head(metric: str) -> str:
    col = COLUMNS.get(metric)
    if col is None:
        return f"<th>{escape(metric)}</th>"
    arrow = "↑" if col.better == "higher" else "↓"
    return (
        f'<th title="{escape(col.label, quote=True)}; {col.better} is better">'
        f"{escape(metric)} {arrow}<br><small>{escape(col.unit)}</small></th>"
    )


def _delay_cell(p: Point) -> str:
    delay = p.summary.get("delay")
    if not delay or delay["ms"].get("mean") is None:
        return '<td class="num">-</td>'
    return f'<td class="num">{delay["ms"]["mean"]:.2f}</td>'


def rd_table(points: Sequence[Point]) -> str:
    """An HTML table: a row per point (grouped by system, by bitrate), mean ± 95% CI of
    every metric (header: name, ↑ or ↓ for the better direction, unit), and the mean
    delay compensated before the sample-aligned metrics (``-``: not compensated)."""
    metrics = table_metrics(points)
    head = "".join(_head(m) for m in metrics)
    rows = []
    for system, pts in systems(points).items():
        for p in pts:
            cells = "".join(_metric_cell(p, m) for m in metrics)
            rows.append(
                f"<tr><td>{escape(system)}</td><td>{p.kind}</td>"
                f'<td class="num">{p.kbps:.3g}</td><td class="num">{p.summary["n_utts"]}</td>'
                f"{cells}{_delay_cell(p)}</tr>"
            )
    return (
        "<table><thead><tr><th>system</th><th>kind</th><th>kbps</th><th>utts</th>"
        f'{head}<th title="mean delay of the decoded signal found by cross-correlation">'
        f"delay<br><small>ms</small></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def write_index(
    out_dir: Path,
    sections: Sequence[Mapping],
    mushra_page: Path | None,
    title: str,
) -> Path:
    """Write ``<out_dir>/index.html``.

    Args:
        out_dir (Path): the report folder.
        sections: one dict per test set: ``{"set": str, "points": [Point], "plots":
            [Path], "tables": [Path], "utts": [{"utt": str, "spectrogram": Path,
            "audio": [(label, Path)]}]}`` with paths inside ``out_dir``.
        mushra_page (Path | None): the listening-test page, linked when given.
        title (str): page title.

    Returns:
        Path: the page.
    """
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>codectk {escape(__version__)}, {now}. Bitrates of models are nominal; those of "
        "anchors are measured from the compressed files. Error bars and ± are 95% "
        "confidence intervals over utterances; ↑ marks metrics where higher is better, ↓ "
        "where lower is. The delay column is the decoded signal's mean delay, removed "
        "before STOI, ESTOI, SI-SDR, mel and STFT distance (- where it was not). WER and "
        "CER are those of an offline recogniser (PocketSphinx): compare them with the "
        "references' (<code>wer_ref</code>).</p>",
    ]
    if mushra_page is not None:
        body.append(
            f'<p><a href="{_rel(mushra_page, out_dir)}">MUSHRA listening test</a> '
            "(ITU-R BS.1534; answers download as CSV, scored with "
            "<code>python -m codectk.bin.mushra_scores</code>).</p>"
        )
    for sec in sections:
        set_name = escape(sec["set"])
        body.append(f'<h2 id="set-{set_name}">Set {set_name}</h2>')
        body.append(rd_table(sec["points"]))
        links = ", ".join(
            f'<a href="{_rel(t, out_dir)}">{escape(t.name)}</a>' for t in sec["tables"]
        )
        body.append(f"<p>Tables: {links}</p>")
        for plot in sec["plots"][:1]:
            body.append(f'<p><img src="{_rel(plot, out_dir)}" alt="rate-distortion plots"></p>')
        more = ", ".join(
            f'<a href="{_rel(p, out_dir)}">{escape(p.stem)}</a>' for p in sec["plots"][1:]
        )
        if more:
            body.append(f"<p>One metric per plot: {more}</p>")
        body.append(f"<h3>Listening: {len(sec['utts'])} utterances of {set_name}</h3>")
        for u in sec["utts"]:
            utt = escape(u["utt"])
            body.append(f"<h4>{utt}</h4>")
            body.append(
                f'<p><img src="{_rel(u["spectrogram"], out_dir)}" alt="log-mel spectrograms of {utt}"></p>'
            )
            rows = "".join(
                f'<tr><td>{escape(label)}</td><td><audio controls preload="metadata" '
                f'src="{_rel(path, out_dir)}"></audio></td></tr>'
                for label, path in u["audio"]
            )
            body.append(f"<table><tbody>{rows}</tbody></table>")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    path = out_dir / "index.html"
    with atomic_write(path) as f:
        f.write(page)
    return path
