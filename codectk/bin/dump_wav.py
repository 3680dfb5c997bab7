"""Stage 2: dump audio as mono PCM WAV at ``--fs`` and write ``utt2num_samples``.

Usage (one job of a ``run.pl JOB=1:N`` array)::

    python -m codectk.bin.dump_wav --fs 16000 --in_scp log/wav.3.scp \\
        --out_wav_dir dump/raw/train/data --out_dir log/out.3

writes ``<out_wav_dir>/<utt>.wav`` and ``<out_dir>/{wav.scp,utt2num_samples}``.
Idempotent: an utterance whose output WAV exists with the expected header is not
re-encoded. An unreadable file stops the job with the file and ``wav.scp`` line named,
or with ``--on_error skip`` is listed with the reason in ``<out_dir>/dropped`` and
counted in the log. Multi-channel files are averaged to mono; clipped and silent files
are dumped with a warning.
"""

from __future__ import annotations

import sys

from codectk.bin.common import parser, run
from codectk.dump import ON_ERROR, dump_wav_scp
from codectk.log import setup_logging, timed


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--fs", type=int, required=True, help="output sample rate (Hz)")
    p.add_argument("--in_scp", required=True, help="input wav.scp (paths or pipe commands)")
    p.add_argument("--out_wav_dir", required=True, help="folder for the dumped WAV files")
    p.add_argument(
        "--out_dir", required=True, help="folder for this job's wav.scp + utt2num_samples"
    )
    p.add_argument(
        "--on_error",
        choices=ON_ERROR,
        default="stop",
        help="an unreadable file stops the job, or is skipped and listed in <out_dir>/dropped",
    )
    args = p.parse_args(argv)
    setup_logging()
    with timed(f"dumping the utterances of {args.in_scp}"):
        dump_wav_scp(args.in_scp, args.fs, args.out_wav_dir, args.out_dir, args.on_error)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
