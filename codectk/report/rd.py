"""Rate-distortion points from stage-7 summaries: discovery, tables and plots.

A *point* is one ``summary.json`` (:func:`codectk.eval.score.score`) at one bitrate. Where they are:

* a one-bitrate experiment: ``<exp>/scores/<set>/summary.json`` (decodes in
  ``<exp>/decode_<set>/``);
* an experiment decoded at several bitrates (codec.sh ``--decode_bandwidths``):
  ``<exp>/scores/<set>_<kbps>kbps/summary.json`` (``<exp>/decode_<set>_<kbps>kbps/``);
* an anchor (codectk.bin.anchors): ``<anchors_dir>/<anchor>_<kbps>/scores/<set>/``
  with the *measured* bitrate (``decode_<set>/anchor.json``).

The x value of a point is its summary's ``bitrate_kbps``; the error bars are the
summaries' 95% confidence intervals (Student's t over utterances). Units, directions and
labels of the metrics come from :data:`codectk.eval.metrics.COLUMNS`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codectk.eval.metrics import COLUMNS
from codectk.io.fileio import atomic_replace_from, atomic_write

log = logging.getLogger("codectk.report")

PLOT_METRICS = (
    "pesq",
    "stoi",
    "visqol",
    "dnsmos_ovrl",
    "mel_distance",
    "si_sdr",
    "wer",
    "spk_sim",
)
METRIC_LABELS = {name: col.label for name, col in COLUMNS.items()}
MIN_TICK_RATIO = 1.12  # bitrate ticks closer than this factor are thinned out


@dataclass
class Point:
    """One scored decoding of one set.

    Attributes:
        system (str): the line it belongs to (experiment folder name or anchor family).
        kind (str): ``"model"`` or ``"anchor"``.
        name (str): unique, file-name safe (``codec_x_1.5kbps``, ``opus_6``).
        label (str): for legends and tables.
        kbps (float): bitrate in kbps (nominal for models, measured for anchors).
        summary (dict): the ``summary.json``.
        score_dir (Path): folder of the summary.
        deg_scp (Path): ``wav.scp`` of the decoded waveforms.
        ref_scp (Path): ``wav.scp`` of the references.
    """

    system: str
    kind: str
    name: str
    label: str
    kbps: float
    summary: dict
    score_dir: Path
    deg_scp: Path
    ref_scp: Path

    def metric(self, name: str) -> tuple[float, float]:
        """(mean, 95% CI half-width) of a metric; NaN where missing."""
        s = self.summary.get(name) or {}
        mean, ci = s.get("mean"), s.get("ci95")
        return (math.nan if mean is None else mean), (math.nan if ci is None else ci)


def _scp_path(recorded: str | None, fallback: Path) -> Path:
    """The scp a summary names when it exists (relative to the cwd), else ``fallback``."""
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return fallback


def _load(path: Path) -> dict:
    summary = json.loads(path.read_text())
    if summary.get("format_version") != 1:
        raise ValueError(f"{path}: summary format {summary.get('format_version')} not supported")
    return summary


def experiment_points(exp_dir: str | Path, set_name: str, suffix: str = "") -> list[Point]:
    """The points of one experiment on one set, sorted by bitrate.

    Args:
        exp_dir: the experiment folder.
        set_name (str): test set name.
        suffix (str): codec.sh's inference-tag suffix of score folders (``_<tag>``).

    Raises:
        ValueError: no ``scores/<set><suffix>/`` nor ``scores/<set><suffix>_<kbps>kbps/``
            summary in it.
    """
    exp = Path(exp_dir)
    base = f"{set_name}{suffix}"
    pattern = re.compile(rf"^{re.escape(base)}_([0-9.]+)kbps$")
    found: dict[float, Point] = {}
    system = exp.name
    for d in sorted((exp / "scores").glob(f"{base}*")):
        m = pattern.match(d.name)
        if not (d.name == base or m) or not (d / "summary.json").is_file():
            continue
        summary = _load(d / "summary.json")
        kbps = summary.get("bitrate_kbps")
        if kbps is None:
            kbps = float(m.group(1)) if m else math.nan
        if m is None and kbps in found:
            continue  # the one-bitrate folder duplicates a --decode_bandwidths one
        decode = exp / f"decode_{d.name}"
        found[float(kbps)] = Point(
            system=system,
            kind="model",
            name=f"{system}_{kbps:g}kbps",
            label=f"{system.removeprefix('codec_')} {kbps:g} kbps",
            kbps=float(kbps),
            summary=summary,
            score_dir=d,
            deg_scp=_scp_path(summary.get("deg_scp"), decode / "wav.scp"),
            ref_scp=Path(summary["ref_scp"]),
        )
    if not found:
        raise ValueError(
            f"{exp}: no scores/{base}/summary.json nor scores/{base}_<kbps>kbps/"
            "summary.json (run stages 6 and 7 first)"
        )
    return [found[k] for k in sorted(found)]


def anchor_points(anchors_dir: str | Path, set_name: str) -> list[Point]:
    """Every anchor point scored on ``set_name`` under ``anchors_dir`` (may be empty)."""
    points = []
    for d in sorted(Path(anchors_dir).glob(f"*/scores/{set_name}/summary.json")):
        root = d.parent.parent.parent  # <anchors_dir>/<anchor>_<kbps>
        decode = root / f"decode_{set_name}"
        meta_path = decode / "anchor.json"
        if not meta_path.is_file():
            log.warning("%s: no anchor.json, skipped", decode)
            continue
        meta = json.loads(meta_path.read_text())
        summary = _load(d)
        kbps = float(summary.get("bitrate_kbps") or meta["measured_kbps"])
        points.append(
            Point(
                system=meta["anchor"],
                kind="anchor",
                name=root.name,
                label=f"{meta['anchor']} {meta['nominal_kbps']:g} kbps",
                kbps=kbps,
                summary=summary,
                score_dir=d.parent,
                deg_scp=_scp_path(summary.get("deg_scp"), decode / "wav.scp"),
                ref_scp=Path(summary["ref_scp"]),
            )
        )
    return sorted(points, key=lambda p: (p.system, p.kbps))


def systems(points: Sequence[Point]) -> dict[str, list[Point]]:
    """Group points by system (line), models first, each sorted by bitrate."""
    out: dict[str, list[Point]] = {}
    for p in sorted(points, key=lambda p: (p.kind != "model", p.system, p.kbps)):
        out.setdefault(p.system, []).append(p)
    return out


def table_metrics(points: Sequence[Point]) -> list[str]:
    """Metrics present in every summary, in the first summary's order."""
    if not points:
        return []
    common = set(points[0].summary.get("metrics", []))
    for p in points[1:]:
        common &= set(p.summary.get("metrics", []))
    return [m for m in points[0].summary.get("metrics", []) if m in common]


def _cell(mean: float, ci: float) -> str:
    if math.isnan(mean):
        return "nan"
    return f"{mean:.3f}" if math.isnan(ci) else f"{mean:.3f} ± {ci:.3f}"


def write_tables(points: Sequence[Point], out_prefix: str | Path) -> list[Path]:
    """Write ``<out_prefix>.tsv`` (means and CI half-widths) and ``<out_prefix>.md``
    (``mean ± ci`` cells), a row per point, grouped by system, sorted by bitrate.

    Returns:
        list[Path]: the two files.
    """
    metrics = table_metrics(points)
    rows = [p for group in systems(points).values() for p in group]
    tsv, md = Path(f"{out_prefix}.tsv"), Path(f"{out_prefix}.md")
    with atomic_write(tsv) as f:
        head = ["system", "kind", "point", "kbps", "n_utts"]
        f.write("\t".join(head + [f"{m}_{s}" for m in metrics for s in ("mean", "ci95")]) + "\n")
        for p in rows:
            vals = [f"{v:.6g}" for m in metrics for v in p.metric(m)]
            f.write(
                "\t".join([p.system, p.kind, p.name, f"{p.kbps:.4g}", str(p.summary["n_utts"])])
                + ("\t" + "\t".join(vals) if vals else "")
                + "\n"
            )
    with atomic_write(md) as f:
        f.write("| system | kbps | " + " | ".join(metrics) + " |\n")
        f.write("|---|---:|" + "---:|" * len(metrics) + "\n")
        for p in rows:
            cells = [_cell(*p.metric(m)) for m in metrics]
            f.write(f"| {p.system} | {p.kbps:.3g} | " + " | ".join(cells) + " |\n")
    return [tsv, md]


def kbps_ticks(kbps: Sequence[float]) -> list[float]:
    """x-axis ticks: the bitrates the points were measured at (3 significant digits),
    dropping any within a factor :data:`MIN_TICK_RATIO` of the previous tick kept."""
    ticks: list[float] = []
    for k in sorted({float(f"{k:.3g}") for k in kbps if k > 0 and math.isfinite(k)}):
        if not ticks or k / ticks[-1] >= MIN_TICK_RATIO:
            ticks.append(k)
    return ticks


def _clip_ylim(ax, metric: str) -> None:
    """Keep the y axis inside the metric's possible range (wide CIs of a few utterances
    would otherwise stretch it far beyond, squashing the points)."""
    lo_bound, hi_bound = COLUMNS[metric].bounds if metric in COLUMNS else (None, None)
    lo, hi = ax.get_ylim()
    pad = 0.04 * (
        (hi_bound if hi_bound is not None else hi) - (lo_bound if lo_bound is not None else lo)
    )
    if lo_bound is not None and lo < lo_bound - pad:
        lo = lo_bound - pad
    if hi_bound is not None and hi > hi_bound + pad:
        hi = hi_bound + pad
    ax.set_ylim(lo, hi)


def plot_rd(
    points: Sequence[Point], out_dir: str | Path, set_name: str, metrics=PLOT_METRICS
) -> list[Path]:
    """Plot each metric against kbps (log axis), one line per system with 95% CI error
    bars: ``<out_dir>/rd_<set>_<metric>.png`` and all of them in ``rd_<set>.png``.

    Models are solid lines with circles, anchors dashed with squares; a system with a
    single point is a large marker labelled with its name. The x ticks are the measured
    bitrates themselves (:func:`kbps_ticks`); the y axis stays within the metric's
    possible range (error bars reaching beyond it are cut at the frame).

    Returns:
        list[Path]: the PNG files, the combined one first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    groups = systems(points)
    present = [m for m in metrics if any(not math.isnan(p.metric(m)[0]) for p in points)]
    out_dir = Path(out_dir)
    all_kbps = [p.kbps for p in points]
    ticks = kbps_ticks(all_kbps)
    lo, hi = min(all_kbps), max(all_kbps)
    style = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9}

    def draw(ax, metric: str) -> None:
        for i, (system, pts) in enumerate(groups.items()):
            xs = [p.kbps for p in pts]
            ys, es = zip(*(p.metric(metric) for p in pts))
            model = pts[0].kind == "model"
            name = system.removeprefix("codec_")
            ax.errorbar(
                xs,
                ys,
                yerr=[0 if math.isnan(e) else e for e in es],
                fmt="-o" if model else "--s",
                markersize=9 if len(pts) == 1 else 6,
                linewidth=1.8,
                capsize=4,
                color=f"C{i % 10}",
                label=name,
            )
            if len(pts) == 1 and not math.isnan(ys[0]):  # a lone point: name it in place
                ax.annotate(
                    name,
                    (xs[0], ys[0]),
                    xytext=(7, 5),
                    textcoords="offset points",
                    fontsize=8,
                    color=f"C{i % 10}",
                )
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.4, hi * 1.4)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("bitrate (kbps)")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(True, alpha=0.3)
        _clip_ylim(ax, metric)

    files = []
    with plt.rc_context(style):
        if present:
            cols = 2 if len(present) > 1 else 1
            rows = math.ceil(len(present) / cols)
            fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.2 * rows), squeeze=False)
            for ax, m in zip(axes.flat, present):
                draw(ax, m)
            for ax in list(axes.flat)[len(present) :]:
                ax.axis("off")
            handles, labels = axes.flat[0].get_legend_handles_labels()
            ncol = min(len(labels), 5)
            fig.legend(handles, labels, loc="lower center", ncol=ncol)
            fig.suptitle(f"rate-distortion on {set_name} (error bars: 95% CI over utterances)")
            legend_rows = math.ceil(len(labels) / ncol)
            fig.tight_layout(rect=(0, (0.15 + 0.3 * legend_rows) / (4.2 * rows), 1, 1))
            path = out_dir / f"rd_{set_name}.png"
            atomic_replace_from(lambda tmp: fig.savefig(tmp, dpi=110, format="png"), path)
            plt.close(fig)
            files.append(path)
        for m in present:
            fig, ax = plt.subplots(figsize=(7, 4.6))
            draw(ax, m)
            ax.legend(loc="best")
            ax.set_title(f"{m} on {set_name}")
            fig.tight_layout()
            path = out_dir / f"rd_{set_name}_{m}.png"
            atomic_replace_from(lambda tmp, fig=fig: fig.savefig(tmp, dpi=110, format="png"), path)
            plt.close(fig)
            files.append(path)
    return files
