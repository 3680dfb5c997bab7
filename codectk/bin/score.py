"""Stage 7: score decoded waveforms against their references.

Usage::

    python -m codectk.bin.score --ref_scp dump/raw/test/wav.scp \\
        --deg_scp exp/codec_x/decode_test/wav.scp --out_dir exp/codec_x/scores/test \\
        [--codes_scp exp/codec_x/decode_test/codes.scp] [--bitrate_kbps 6.0] \\
        [--text dump/raw/test/text] [--metrics pesq,stoi,visqol,dnsmos,wer,spk_sim] \\
        [--max_delay_ms 0] [--cache_dir DIR] [--nj 4]

Metrics: pesq, stoi, estoi, mel_distance, stft_distance, si_sdr, visqol, dnsmos
(dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808), wer and cer (of the decoded speech
and of the references against --text, and their difference), spk_sim. The default is
every metric whose package is installed (wer and cer only with --text); a requested
metric whose package is missing is an error naming the package and the install command.
Writes per_utt.tsv, summary.json, summary.txt (printed) and, with wer/cer, asr.tsv to
--out_dir; see codectk/eval/score.py and docs/evaluation.md.
"""

from __future__ import annotations

import logging
import sys

from codectk.bin.common import parser, run
from codectk.eval.metrics import METRICS, default_metrics, parse_metrics
from codectk.eval.score import format_summary, score
from codectk.io.audio import AudioError
from codectk.log import setup_logging

log = logging.getLogger("codectk.bin.score")

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--ref_scp", required=True, help="reference wav.scp")
    p.add_argument("--deg_scp", required=True, help="decoded wav.scp")
    p.add_argument("--out_dir", required=True, help="output folder")
    p.add_argument("--codes_scp", default=None, help="codes.scp of the decoding (optional)")
    p.add_argument("--bitrate_kbps", type=float, default=None, help="nominal bitrate in kbps")
    p.add_argument("--text", default=None, help="Kaldi text of the references (for wer, cer)")
    p.add_argument(
        "--metrics",
        default=None,
        help=f"comma list of {list(METRICS)} (default: every installed one: "
        f"{','.join(default_metrics(True))}; wer and cer only with --text)",
    )
    p.add_argument(
        "--max_delay_ms",
        type=float,
        default=0.0,
        help="find the decoded signal's delay within +- this many ms by cross-correlation "
        "and remove it before stoi, estoi, si_sdr, mel and stft distance (default: 0, off)",
    )
    p.add_argument(
        "--cache_dir", default=None, help="folder keeping recognised references (wer, cer)"
    )
    p.add_argument("--nj", type=int, default=1, help="parallel processes (default: 1)")
    args = p.parse_args(argv)
    setup_logging()
    try:
        metrics = None if args.metrics is None else parse_metrics(args.metrics)
    except ValueError as exc:
        p.error(str(exc))
    if args.nj < 1:
        p.error(f"--nj {args.nj} must be >= 1")
    if args.max_delay_ms < 0:
        p.error(f"--max_delay_ms {args.max_delay_ms:g} must be >= 0")
    try:
        summary = score(
            args.ref_scp,
            args.deg_scp,
            args.out_dir,
            metrics,
            args.codes_scp,
            args.bitrate_kbps,
            args.nj,
            text=args.text,
            max_delay_ms=args.max_delay_ms,
            cache_dir=args.cache_dir,
        )
    except (ValueError, AudioError) as exc:  # missing ids or package, DataDirError, audio
        log.error("%s", exc)
        return 1
    sys.stdout.write(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
