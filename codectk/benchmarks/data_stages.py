"""Data-stage throughput on the bundled corpus (70 LibriSpeech utterances, 16 kHz FLAC), in
audio hours per hour (audio duration / wall-clock time, one process):

* stage 2, wav dump (:func:`codectk.dump.dump_wav_scp`: read, mono, soxr resample to
  24 kHz, 16-bit WAV written atomically), against its ceiling: the bare
  ``soundfile.read`` + ``soxr.resample`` + ``soundfile.write`` of the same files in a
  loop. Target: dump time within 1.5 times the ceiling's.
* stage 7, scoring (:func:`codectk.eval.score.score` with the six signal metrics PESQ,
  STOI, ESTOI, mel and STFT distance, SI-SDR) of the 24 kHz dump against the FLAC
  originals, against the bare reading (and resampling to 16 kHz) of both sides; no
  target (the metrics themselves dominate). The cost of each metric, the model-based
  ones included, is the ``scoring`` suite's.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from codectk.benchmarks._measure import corpus_files, in_subprocess

DUMP_FS = 24000
SIGNAL_METRICS = ("pesq", "stoi", "estoi", "mel_distance", "stft_distance", "si_sdr")
TARGET_DUMP_RATIO = 1.5


def _write_scp(path: Path, files: list[Path]) -> None:
    path.write_text("".join(f"{f.stem} {f}\n" for f in files))


def dump_job(n_files: int, out_dir: str) -> dict:
    """Stage 2 on the first ``n_files`` corpus files; returns seconds and audio seconds."""
    import soundfile as sf

    from codectk.dump import dump_wav_scp

    files = corpus_files(n_files)
    _write_scp(Path(out_dir, "src.scp"), files)
    t0 = time.perf_counter()
    dump_wav_scp(f"{out_dir}/src.scp", DUMP_FS, f"{out_dir}/wav", f"{out_dir}/dump")
    seconds = time.perf_counter() - t0
    audio = sum(sf.info(str(f)).duration for f in files)
    return {"seconds": seconds, "audio_seconds": audio}


def dump_ceiling_job(n_files: int, out_dir: str) -> dict:
    """Bare decode + resample + write of the same files (the dump's ceiling)."""
    import soundfile as sf
    import soxr

    files = corpus_files(n_files)
    Path(out_dir, "bare").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    audio = 0.0
    for f in files:
        wav, fs = sf.read(str(f), dtype="float32")
        y = soxr.resample(wav, fs, DUMP_FS, quality="HQ")
        sf.write(f"{out_dir}/bare/{f.stem}.wav", y, DUMP_FS, subtype="PCM_16")
        audio += len(wav) / fs
    return {"seconds": time.perf_counter() - t0, "audio_seconds": audio}


def score_job(n_files: int, out_dir: str) -> dict:
    """Stage 7 (the six signal metrics) of the dump against the originals."""
    from codectk.eval.score import score

    _write_scp(Path(out_dir, "ref.scp"), corpus_files(n_files))
    t0 = time.perf_counter()
    score(f"{out_dir}/ref.scp", f"{out_dir}/dump/wav.scp", f"{out_dir}/scores", SIGNAL_METRICS)
    return {"seconds": time.perf_counter() - t0}


def score_ceiling_job(n_files: int, out_dir: str) -> dict:
    """Bare reading of both sides and resampling of the decoded side to the reference rate."""
    import soundfile as sf
    import soxr

    files = corpus_files(n_files)
    t0 = time.perf_counter()
    for f in files:
        ref, fs = sf.read(str(f), dtype="float32")
        deg, fs_deg = sf.read(f"{out_dir}/wav/{f.stem}.wav", dtype="float32")
        soxr.resample(deg, fs_deg, fs, quality="HQ")
    return {"seconds": time.perf_counter() - t0}


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """Dump and scoring throughput and their ceilings (single process, CPU only)."""
    if device != "cpu":
        return []
    n_files = 4 if quick else None
    common = dict(threads=1, device=device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(n_files=n_files, out_dir=tmp)
        ceiling = in_subprocess("codectk.benchmarks.data_stages:dump_ceiling_job", kw)
        dump = in_subprocess("codectk.benchmarks.data_stages:dump_job", kw)
        audio_h = dump["audio_seconds"] / 3600
        extra = dict(files=n_files or len(corpus_files()), audio_hours=round(audio_h, 4))

        def throughput(name: str, r: dict) -> dict:
            return dict(
                name=name,
                metric="throughput",
                value=audio_h / (r["seconds"] / 3600),
                unit="audio h/h",
                seconds=round(r["seconds"], 3),
                **extra,
                **common,
            )

        rows.append(throughput("wav dump (stage 2)", dump))
        rows.append(throughput("dump ceiling (read+soxr+write)", ceiling))
        rows.append(
            dict(
                name="wav dump (stage 2)",
                metric="time vs ceiling",
                value=dump["seconds"] / ceiling["seconds"],
                unit="x",
                target=TARGET_DUMP_RATIO,
                target_rule="<=",
                **common,
            )
        )
        score_ceiling = in_subprocess("codectk.benchmarks.data_stages:score_ceiling_job", kw)
        scored = in_subprocess("codectk.benchmarks.data_stages:score_job", kw)
        rows.append(throughput("scoring (stage 7)", scored))
        rows.append(throughput("score ceiling (read+soxr)", score_ceiling))
    return rows
