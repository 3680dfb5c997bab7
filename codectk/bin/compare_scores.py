"""Compare the scores of several experiments side by side.

Usage::

    python -m codectk.bin.compare_scores exp/codec_a/scores/test exp/codec_b/scores/test \\
        [--names trained untrained] [--require_better mel_distance]

Reads each ``summary.json`` (stage 7) and prints one table: a row per metric, a column
per experiment (mean +- 95% CI). With ``--require_better M`` the first experiment must
beat the second on metric M (lower is better for distances, higher otherwise) or the
command exits 1: the demo uses it to show that training really learned. Which direction
is better comes from :data:`codectk.eval.metrics.COLUMNS` (lower for distances, WER and
CER, higher otherwise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.eval.metrics import better as better_direction


def _num(value) -> str:
    return "nan" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("score_dirs", nargs="+", help="folders holding summary.json")
    p.add_argument("--names", nargs="+", default=None, help="column names (default: folder paths)")
    p.add_argument(
        "--require_better", default=None, help="metric on which the first must beat the second"
    )
    args = p.parse_args(argv)
    names = args.names or [str(d) for d in args.score_dirs]
    if len(names) != len(args.score_dirs):
        p.error("--names must name every score folder")
    summaries = []
    for d in args.score_dirs:
        path = Path(d) / "summary.json"
        if not path.is_file():
            p.error(f"{path}: not found (run stage 7 first)")
        summaries.append(json.loads(path.read_text()))
    metrics = list(summaries[0].get("metrics", []))
    width = max(14, *(len(n) for n in names))
    print(f"{'metric':<16}" + "".join(f"{n:>{width + 2}}" for n in names))
    for m in metrics:
        cells = []
        for s in summaries:
            v = s.get(m)
            cells.append(f"{_num(v.get('mean'))} +- {_num(v.get('ci95'))}" if v else "-")
        print(f"{m:<16}" + "".join(f"{c:>{width + 2}}" for c in cells))
    print(
        f"{'bitrate (kbps)':<16}"
        + "".join(f"{_num(s.get('bitrate_kbps')):>{width + 2}}" for s in summaries)
    )
    if args.require_better:
        m = args.require_better
        if len(summaries) < 2 or m not in summaries[0] or m not in summaries[1]:
            p.error(f"--require_better {m}: needs two summaries holding {m}")
        a, b = summaries[0][m]["mean"], summaries[1][m]["mean"]
        if a is None or b is None:
            p.error(f"--require_better {m}: a mean is missing (no utterance scored)")
        better = a < b if better_direction(m) == "lower" else a > b
        verdict = "better" if better else "NOT better"
        print(f"\n{names[0]} is {verdict} than {names[1]} on {m}: {a:.4f} vs {b:.4f}")
        return 0 if better else 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
