"""ESC encode + decode speed (issue 6, item 5).

Rows, per thread count: ESC-Base (``conf/esc_16k_base.yaml``) and ESC-Large
(``conf/esc_16k_large.yaml``) with random weights (the time does not depend on them)
encoding 10 s of real 16 kHz speech (bundled corpus) at 6 streams (9 kbps) and decoding
the codes, under ``torch.inference_mode``: ``esc_{base,large}_encode_decode_10s``, best
wall-clock seconds of 3 runs after a warm-up, with the best process CPU seconds, the
encode and decode shares and the authors' time as context. The authors' code takes
3.96 s (Base) and 7.39 s (Large) on 1 thread of the 2-core development CPU; the targets
are half that: 1.98 s and 3.70 s on 1 thread.

``quick``: 1 s of speech, ESC-Base only, one repeat (a smoke run).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from codectk.benchmarks._measure import best_time, speech

REPO = Path(__file__).resolve().parents[2]
MODELS = {  # name: (config, authors' seconds on 1 thread, target seconds)
    "base": ("conf/esc_16k_base.yaml", 3.96, 1.98),
    "large": ("conf/esc_16k_large.yaml", 7.39, 3.70),
}


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """See the module doc; returns result rows (``codectk.benchmarks``)."""
    from codectk.inference import build_codec

    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    names = ["base"] if quick else list(MODELS)
    wav = torch.from_numpy(speech(seconds, 16000))[None, None]  # (T,) -> (1, 1, T)
    rows = []
    saved = torch.get_num_threads()
    for name in names:
        config, authors_s, target_s = MODELS[name]
        torch.manual_seed(0)
        codec = build_codec(REPO / config).eval()
        for n in threads:
            torch.set_num_threads(n)
            with torch.inference_mode():
                wall, cpu = best_time(lambda c=codec: c.decode(c.encode(wav, 18)), repeats)
                t0 = time.perf_counter()
                codes = codec.encode(wav, 18)
                t1 = time.perf_counter()
                codec.decode(codes)
                t2 = time.perf_counter()
            row = {
                "suite": "esc",
                "name": f"esc_{name}_encode_decode_{seconds:g}s",
                "metric": f"encode + decode of {seconds:g} s of 16 kHz speech at 6 streams (9 kbps)",
                "value": round(wall, 4),
                "unit": "s",
                "threads": n,
                "device": "cpu",
                "cpu_s": round(cpu, 4),
                "encode_s": round(t1 - t0, 4),
                "decode_s": round(t2 - t1, 4),
                "config": config,
                "reference_s": authors_s,
            }
            if n == 1 and not quick:
                row.update(target=target_s, target_rule="<=")
            rows.append(row)
    torch.set_num_threads(saved)
    return rows
