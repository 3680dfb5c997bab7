"""Score a MUSHRA listening test from the CSV files its page downloads.

Usage::

    python -m codectk.bin.mushra_scores results/*.csv [--post_screening true] \\
        [--out_json exp/codec_x/report/mushra_scores.json]

Prints a row per system (best first): mean rating, 95% confidence interval (Student's
t over every listener x trial rating, ITU-R BS.1534-3 section 9), the number of
ratings and listeners. With ``--post_screening true``, listeners who rate the hidden
reference below 90 in more than 15 % of their trials are excluded first (BS.1534-3
section 4.1.2), and named.
"""

from __future__ import annotations

import json
import math
import sys

from codectk.bin.common import parser, run, str2bool
from codectk.io.fileio import atomic_write
from codectk.report.mushra_stats import read_ratings, screen_listeners, system_scores


def _num(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("csv", nargs="+", help="answers files from mushra.html")
    p.add_argument(
        "--post_screening", type=str2bool, default=False, help="exclude unreliable listeners"
    )
    p.add_argument("--threshold", type=float, default=90.0, help="hidden-reference rating floor")
    p.add_argument("--max_fraction", type=float, default=0.15, help="of trials below the floor")
    p.add_argument("--out_json", default=None, help="also write the table as JSON")
    args = p.parse_args(argv)
    ratings = read_ratings(args.csv)
    listeners = sorted({r.listener for r in ratings})
    excluded: dict[str, float] = {}
    if args.post_screening:
        excluded = screen_listeners(ratings, args.threshold, args.max_fraction)
        ratings = [r for r in ratings if r.listener not in excluded]
    print(f"{len(listeners)} listener(s) in {len(args.csv)} file(s)")
    for name, frac in sorted(excluded.items()):
        print(
            f"excluded by post-screening: {name} (hidden reference < {args.threshold:g} "
            f"in {frac:.0%} of trials)"
        )
    if not ratings:
        print("no ratings left", file=sys.stderr)
        return 1
    scores = system_scores(ratings)
    width = max(12, *(len(s) for s in scores))
    print(f"{'system':<{width}} {'mean':>6} {'±95% CI':>8} {'n':>5} {'listeners':>9}")
    for system, s in scores.items():
        print(
            f"{system:<{width}} {_num(s['mean']):>6} {_num(s['ci95']):>8} {s['n']:>5} "
            f"{s['n_listeners']:>9}"
        )
    if args.out_json:
        doc = {
            "files": list(args.csv),
            "listeners": listeners,
            "excluded": excluded,
            "systems": {
                k: {**v, "ci95": None if math.isnan(v["ci95"]) else v["ci95"]}
                for k, v in scores.items()
            },
        }
        with atomic_write(args.out_json) as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
