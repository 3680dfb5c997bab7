"""Stage 7 anchors: encode, decode and score a test set with Opus and Codec 2.

Usage::

    python -m codectk.bin.anchors --anchors "opus codec2" --ref_scp dump/raw/test/wav.scp \\
        --set test --anchors_dir exp/anchors [--opus_kbps "6 8 12 24"] \\
        [--codec2_kbps "1.2 2.4 3.2"] [--nj 4] [--metrics pesq,stoi,...] \\
        [--text dump/raw/test/text] [--max_delay_ms 50] [--force false]

For every anchor and bitrate, writes ``<anchors_dir>/<anchor>_<kbps>/decode_<set>/``
(decoded WAVs, ``wav.scp``, ``utt2bytes``, ``bitrate`` = measured kbps,
``anchor.json``) and ``<anchors_dir>/<anchor>_<kbps>/scores/<set>/`` (as stage 7 for a
model, with the measured bitrate, the decoded signal's delay compensated before the
sample-aligned metrics). The folders are shared by every experiment and redone only when
the reference list or the tool changes (scores: when the metrics change). See codectk/anchors.py for
the exact commands. A missing tool is an error naming its Debian package.
"""

from __future__ import annotations

import logging
import sys

from codectk.anchors import ANCHORS, MAX_DELAY_MS, decode_set, get_anchor, score_set
from codectk.bin.common import parser, run, str2bool
from codectk.eval.metrics import parse_metrics
from codectk.log import setup_logging, timed


def _kbps_list(spec: str, what: str) -> list[float]:
    try:
        return [float(x) for x in spec.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{what} {spec!r}: expected numbers (kbps)") from None


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--anchors", required=True, help=f"space or comma list of {sorted(ANCHORS)}")
    p.add_argument("--ref_scp", required=True, help="reference wav.scp of the test set")
    p.add_argument("--set", required=True, dest="set_name", help="test set name (folder names)")
    p.add_argument("--anchors_dir", required=True, help="root folder, e.g. exp/anchors")
    for name, anchor in ANCHORS.items():
        p.add_argument(
            f"--{name}_kbps",
            default=" ".join(f"{k:g}" for k in anchor.default_kbps),
            help=f"{name} bitrates in kbps (default: %(default)s)",
        )
    p.add_argument("--nj", type=int, default=1, help="parallel encoders and scoring processes")
    p.add_argument(
        "--metrics", default=None, help="comma list (default: every installed one, as stage 7)"
    )
    p.add_argument("--text", default=None, help="Kaldi text of the references (wer, cer)")
    p.add_argument(
        "--max_delay_ms",
        type=float,
        default=MAX_DELAY_MS,
        help="delay compensation search range in ms (0: off; default: %(default)s)",
    )
    p.add_argument("--force", type=str2bool, default=False, help="redo even when up to date")
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.bin.anchors")
    try:
        names = list(dict.fromkeys(args.anchors.replace(",", " ").split()))
        anchors = [get_anchor(n) for n in names]
        rates = {
            a.name: _kbps_list(getattr(args, f"{a.name}_kbps"), f"--{a.name}_kbps") for a in anchors
        }
        for a in anchors:
            for kbps in rates[a.name]:
                a.check_kbps(kbps)
        metrics = parse_metrics(args.metrics) if args.metrics else None
    except ValueError as exc:
        p.error(str(exc))
    if not anchors:
        p.error("--anchors is empty")
    if args.nj < 1:
        p.error(f"--nj {args.nj} must be >= 1")
    if args.max_delay_ms < 0:
        p.error(f"--max_delay_ms {args.max_delay_ms:g} must be >= 0")
    for a in anchors:
        a.check_tools()
    rows = []
    with timed(f"anchors {' '.join(names)} on {args.ref_scp}"):
        for a in anchors:
            for kbps in rates[a.name]:
                dec = decode_set(
                    a, kbps, args.ref_scp, args.set_name, args.anchors_dir, args.nj, args.force
                )
                sc = score_set(
                    dec,
                    args.ref_scp,
                    args.set_name,
                    metrics,
                    args.nj,
                    args.force,
                    text=args.text,
                    max_delay_ms=args.max_delay_ms,
                )
                rows.append((a.dirname(kbps), kbps, float((dec / "bitrate").read_text()), sc))
    print(f"{'anchor':<14} {'nominal kbps':>12} {'measured kbps':>14}  scores")
    for name, nominal, measured, sc in rows:
        print(f"{name:<14} {nominal:>12g} {measured:>14.3f}  {sc}")
    log.info("%d anchor points on set %s in %s", len(rows), args.set_name, args.anchors_dir)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
