"""Stage 7's cost per metric: compute seconds per hour of scored audio, on one CPU thread,
for every metric of stage 7 (codectk/eval/metrics.py) and for delay compensation.

Each metric runs alone in a fresh process through :func:`codectk.eval.score.score` on 12
bundled LibriSpeech utterances (2 with ``--quick``) decoded by Opus at 12 kbps (the
references plus noise at 20 dB SNR where opus-tools is missing). The first utterance is
scored on its own first, so that model loading and numba compilation land in
``first_utt_s`` (its wall time); the value is the metric's own compute time on the others (the
``seconds`` of their ``summary.json``) per hour of their audio. WER/CER recognise
reference and decoding (two recogniser passes per utterance, no cache) against
placeholder transcripts: their cost is measured, not their accuracy. A metric whose
package is missing gives a skipped row. No targets: these size scoring jobs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from codectk.benchmarks._measure import corpus_files, in_subprocess

N_UTTS = 12
THREAD_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def prepare(n_files: int, out_dir: str) -> dict:
    """References, decodings and placeholder transcripts of the first ``n_files`` files."""
    import numpy as np

    from codectk.io.audio import read_audio, to_mono, write_audio
    from codectk.io.datadir import write_scp

    have_opus = all(shutil.which(t) for t in ("opusenc", "opusdec"))
    if have_opus:
        from codectk.anchors import get_anchor
    refs, degs, seconds = {}, {}, {}
    for i, f in enumerate(corpus_files(n_files)):
        x, fs = read_audio(str(f))
        x = to_mono(x)
        if have_opus:
            with tempfile.TemporaryDirectory() as work:
                y = get_anchor("opus").encode_decode(x, fs, 12, Path(work))[0]
        else:
            noise = np.random.default_rng(i).standard_normal(x.size)
            y = x + noise * np.sqrt(np.var(x) / 100)
        write_audio(Path(out_dir, "deg", f"{f.stem}.wav"), y, fs)
        refs[f.stem], degs[f.stem] = str(f), str(Path(out_dir, "deg", f"{f.stem}.wav"))
        seconds[f.stem] = x.size / fs
    first = sorted(refs)[0]
    for name, keep in (("first", {first}), ("rest", set(refs) - {first})):
        write_scp(Path(out_dir, f"ref_{name}.scp"), {u: refs[u] for u in keep})
        write_scp(Path(out_dir, f"deg_{name}.scp"), {u: degs[u] for u in keep})
        write_scp(Path(out_dir, f"text_{name}"), {u: "PLACEHOLDER TRANSCRIPT" for u in keep})
    return {
        "degraded_by": "opus 12 kbps" if have_opus else "noise at 20 dB SNR",
        "first_s": seconds[first],
        "rest_s": sum(s for u, s in seconds.items() if u != first),
        "rest_utts": len(refs) - 1,
    }


def metric_job(name: str, out_dir: str) -> dict:
    """Score the first utterance (with loading), then the rest (measured), with ``name``."""
    from codectk.eval.metrics import METRICS
    from codectk.eval.score import score

    text = METRICS[name].needs_text
    seconds = {}
    for part in ("first", "rest"):
        t0 = time.perf_counter()
        s = score(
            f"{out_dir}/ref_{part}.scp",
            f"{out_dir}/deg_{part}.scp",
            f"{out_dir}/scores_{name}_{part}",
            [name],
            text=f"{out_dir}/text_{part}" if text else None,
        )
        seconds[part] = (time.perf_counter() - t0, s["seconds"][name])
    return {"first_utt_s": seconds["first"][0], "compute_s": seconds["rest"][1]}


def align_job(out_dir: str) -> dict:
    """Delay estimation and compensation (50 ms search) on the measured utterances."""
    from codectk.io.audio import read_audio, to_mono
    from codectk.io.datadir import read_scp
    from codectk.metrics.align import compensate, estimate_delay

    refs, degs = read_scp(f"{out_dir}/ref_rest.scp"), read_scp(f"{out_dir}/deg_rest.scp")
    total = 0.0
    for utt, spec in refs.items():
        (x, fs), (y, _) = read_audio(spec), read_audio(degs[utt])
        t0 = time.perf_counter()
        delay, _ = estimate_delay(to_mono(x), to_mono(y), fs, 50.0)
        compensate(to_mono(x), to_mono(y), delay)
        total += time.perf_counter() - t0
    return {"compute_s": total}


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """One row per metric (CPU, 1 thread)."""
    from codectk.eval.metrics import INSTALL, METRICS

    if device != "cpu":
        return []
    rows = []
    common = dict(metric="cost per audio hour", unit="s/h", threads=1, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        info = in_subprocess(
            "codectk.benchmarks.scoring:prepare", dict(n_files=2 if quick else N_UTTS, out_dir=tmp)
        )
        audio_h = info["rest_s"] / 3600
        extra = dict(utterances=info["rest_utts"], audio_s=round(info["rest_s"], 1))
        extra["decoded_by"] = info["degraded_by"]
        for name, m in METRICS.items():
            if m.missing():
                missing = ", ".join(m.missing())
                skipped = f"{missing} not installed: {INSTALL.format(m.package)}"
                rows.append(dict(name=name, value=None, skipped=skipped, **common))
                continue
            r = in_subprocess(
                "codectk.benchmarks.scoring:metric_job",
                dict(name=name, out_dir=tmp),
                env=THREAD_ENV,
                timeout=3600,
            )
            rows.append(
                dict(
                    name=name,
                    value=r["compute_s"] / audio_h,
                    rtf=round(r["compute_s"] / info["rest_s"], 4),
                    first_utt_s=round(r["first_utt_s"], 2),
                    peak_rss_MiB=r["peak_rss_MiB"],
                    **extra,
                    **common,
                )
            )
        r = in_subprocess("codectk.benchmarks.scoring:align_job", dict(out_dir=tmp), env=THREAD_ENV)
        rows.append(
            dict(
                name="delay compensation",
                value=r["compute_s"] / audio_h,
                rtf=round(r["compute_s"] / info["rest_s"], 4),
                **extra,
                **common,
            )
        )
    return rows
