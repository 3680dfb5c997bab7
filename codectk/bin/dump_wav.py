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

import logging
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from codectk.audio import AudioError, read_audio, resample, to_mono, write_audio
from codectk.bin.common import parser, run, timed
from codectk.datadir import DataDirError, read_scp, write_scp
from codectk.log import setup_logging


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
        choices=["stop", "skip"],
        default="stop",
        help="an unreadable file stops the job, or is skipped and listed in <out_dir>/dropped",
    )
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.dump_wav")
    table = read_scp(args.in_scp)
    wav_dir = Path(args.out_wav_dir).resolve()
    out_wav, lens, dropped = {}, {}, {}
    counts = {"resampled": 0, "reused": 0, "downmixed": 0, "clipped": 0, "silent": 0}
    with timed(f"dumping {len(table)} utterances from {args.in_scp}"):
        for lineno, (utt, spec) in enumerate(table.items(), 1):
            where = f"{args.in_scp}:{lineno}"
            if "/" in utt:
                raise DataDirError(f"{where}: utterance id {utt!r} contains '/'")
            dst = wav_dir / f"{utt}.wav"
            if _already_dumped(dst, args.fs):
                out_wav[utt], lens[utt] = str(dst), sf.info(str(dst)).frames
                counts["reused"] += 1
                continue
            for stale in wav_dir.glob(f".{utt}.*.wav"):  # left by a killed earlier run
                stale.unlink(missing_ok=True)
            try:
                wav, fs = read_audio(spec, where=where)
            except AudioError as exc:
                if args.on_error == "stop":
                    raise
                log.warning("skipped: %s", exc)
                dropped[utt] = str(exc).replace("\n", " ")
                continue
            counts["downmixed"] += wav.shape[0] > 1
            mono = to_mono(wav)
            peak = float(np.abs(mono).max())
            if peak >= 0.999:
                counts["clipped"] += 1
                log.warning("%s (%s) reaches full scale (peak %.3f): clipped?", spec, where, peak)
            elif peak == 0.0:
                counts["silent"] += 1
                log.warning("%s (%s) is all zeros", spec, where)
            if fs != args.fs:
                mono = resample(mono, fs, args.fs)
                counts["resampled"] += 1
            write_audio(dst, mono, args.fs)
            out_wav[utt], lens[utt] = str(dst), len(mono)
    out = Path(args.out_dir)
    write_scp(out / "wav.scp", out_wav)
    write_scp(out / "utt2num_samples", lens)
    write_scp(out / "dropped", dropped)
    log.info(
        "wrote %d utterances to %s (%s); dropped %d (listed in %s); lists in %s",
        len(out_wav),
        wav_dir,
        ", ".join(f"{v} {k}" for k, v in counts.items()),
        len(dropped),
        out / "dropped",
        out,
    )
    return 0


def _already_dumped(path: Path, fs: int) -> bool:
    """True for a complete earlier dump of this utterance (files are written atomically)."""
    if not path.exists():
        return False
    try:
        info = sf.info(str(path))
    except Exception:  # a foreign or damaged file: dump again
        return False
    return info.samplerate == fs and info.channels == 1 and info.frames > 0


if __name__ == "__main__":
    sys.exit(run(main))
