"""Stage 7 report: rate-distortion tables and plots, spectrograms, an HTML page with
audio players and a MUSHRA listening test, over experiments and anchors.

Usage (from the recipe folder, where stage 7 ran)::

    python -m codectk.bin.report --exp_dirs exp/codec_a [exp/codec_b ...] \\
        --anchors_dir exp/anchors --sets test --out_dir exp/codec_a/report \\
        [--n_utts 3] [--mushra_utts 3] [--mushra_systems "codec_a_1.5kbps opus_6"]

Reads every ``scores/<set>[_<kbps>kbps]/summary.json`` of the experiments and
``<anchors_dir>/*/scores/<set>/summary.json`` (codectk/report/rd.py) and writes to
``out_dir``:

* ``rd_<set>.{tsv,md}``: a row per system and bitrate, metric means and 95% CIs;
* ``plots/rd_<set>.png`` (PESQ, STOI, mel distance, SI-SDR against kbps, a line per
  experiment and anchor) and ``plots/rd_<set>_<metric>.png``;
* ``spectrograms/<set>/<utt>.png`` for ``--n_utts`` utterances (evenly spread over the
  sorted list) and their audio, copied to ``audio/<set>/<point>/<utt>.wav``;
* ``index.html``: tables, plots, spectrograms and players (relative paths);
* ``mushra.html`` and ``mushra/``: the listening test on the first set (hidden
  reference, 3.5 kHz low-pass anchor and each point of ``--mushra_systems``, default
  all), see codectk/report/mushra.py.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.log import setup_logging, timed
from codectk.report import html
from codectk.report.build import build_mushra, build_set, collect_points, pick_utts

log = logging.getLogger("codectk.bin.report")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--exp_dirs", nargs="+", required=True, help="experiment folders")
    p.add_argument("--anchors_dir", default=None, help="anchors root (codectk.bin.anchors)")
    p.add_argument("--sets", nargs="+", required=True, help="test set names")
    p.add_argument("--out_dir", required=True, help="report folder")
    p.add_argument("--n_utts", type=int, default=3, help="utterances with spectrograms and players")
    p.add_argument(
        "--mushra_utts",
        type=int,
        default=None,
        help="MUSHRA trials, <= --n_utts (default: --n_utts)",
    )
    p.add_argument(
        "--mushra_systems", default=None, help="comma or space list of point names (default: all)"
    )
    p.add_argument("--suffix", default="", help="inference-tag suffix of score folders (_<tag>)")
    p.add_argument("--title", default=None, help="page title (default: from the first experiment)")
    args = p.parse_args(argv)
    setup_logging()
    if args.n_utts < 1:
        p.error(f"--n_utts {args.n_utts} must be >= 1")
    if args.mushra_utts is not None and not 1 <= args.mushra_utts <= args.n_utts:
        p.error(f"--mushra_utts {args.mushra_utts} must be in [1, --n_utts={args.n_utts}]")
    out = Path(args.out_dir)
    title = args.title or f"codectk report: {Path(args.exp_dirs[0]).name}"
    for sub in ("audio", "spectrograms", "mushra", "plots"):  # no stale file of an older run
        shutil.rmtree(out / sub, ignore_errors=True)
    sections, mushra_page = [], None
    with timed(f"report {out}"):
        for i, set_name in enumerate(args.sets):
            points = collect_points(args.exp_dirs, set_name, args.suffix, args.anchors_dir)
            section, utts, _ = build_set(set_name, points, out, args.n_utts)
            sections.append(section)
            if i == 0:
                chosen = points
                if args.mushra_systems:
                    wanted = args.mushra_systems.replace(",", " ").split()
                    unknown = sorted(set(wanted) - {pt.name for pt in points})
                    if unknown:
                        p.error(
                            f"--mushra_systems {unknown} not found; points of {set_name}: "
                            f"{[pt.name for pt in points]}"
                        )
                    chosen = [pt for pt in points if pt.name in wanted]
                trials = pick_utts(utts, args.mushra_utts or len(utts))
                mushra_page = build_mushra(
                    out, set_name, chosen, trials, Path(args.exp_dirs[0]).name
                )
        index = html.write_index(out, sections, mushra_page, title)
    log.info("wrote %s and %s", index, mushra_page)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
