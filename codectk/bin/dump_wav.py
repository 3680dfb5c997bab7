"""Stage 2: dump audio as mono PCM WAV at ``--fs`` and write ``utt2num_samples``.

Usage (one job of a ``run.pl JOB=1:N`` array)::

    python -m codectk.bin.dump_wav --fs 16000 --in_scp log/wav.3.scp \\
        --out_wav_dir dump/raw/train/data --out_dir log/out.3

writes ``<out_wav_dir>/<utt>.wav`` and ``<out_dir>/{wav.scp,utt2num_samples}``.
Idempotent: an utterance whose output WAV exists with the expected header is not
re-encoded. Reading errors stop the job with the file and ``wav.scp`` line named.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import soundfile as sf

from codectk.audio import read_audio, resample, to_mono, write_audio
from codectk.bin.common import parser, setup_logging, timed
from codectk.datadir import read_scp, write_scp


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--fs", type=int, required=True, help="output sample rate (Hz)")
    p.add_argument("--in_scp", required=True, help="input wav.scp (paths or pipe commands)")
    p.add_argument("--out_wav_dir", required=True, help="folder for the dumped WAV files")
    p.add_argument(
        "--out_dir", required=True, help="folder for this job's wav.scp + utt2num_samples"
    )
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.dump_wav")
    table = read_scp(args.in_scp)
    lines = {u: i for i, u in enumerate(table, 1)}
    wav_dir = Path(args.out_wav_dir).resolve()
    out_wav, lens, n_resampled, n_reused = {}, {}, 0, 0
    with timed(f"dumping {len(table)} utterances from {args.in_scp}"):
        for utt, spec in table.items():
            dst = wav_dir / f"{utt}.wav"
            if dst.exists():
                info = sf.info(str(dst))
                if info.samplerate == args.fs and info.channels == 1 and info.frames > 0:
                    out_wav[utt], lens[utt] = str(dst), info.frames
                    n_reused += 1
                    continue
            wav, fs = read_audio(spec, where=f"{args.in_scp}:{lines[utt]}")
            mono = to_mono(wav)
            if fs != args.fs:
                mono = resample(mono, fs, args.fs)
                n_resampled += 1
            write_audio(dst, mono, args.fs)
            out_wav[utt], lens[utt] = str(dst), len(mono)
    write_scp(Path(args.out_dir) / "wav.scp", out_wav)
    write_scp(Path(args.out_dir) / "utt2num_samples", lens)
    log.info(
        "wrote %d utterances to %s (%d resampled to %d Hz, %d already dumped); lists in %s",
        len(out_wav),
        wav_dir,
        n_resampled,
        args.fs,
        n_reused,
        args.out_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
