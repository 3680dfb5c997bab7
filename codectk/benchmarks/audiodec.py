"""AudioDec streaming latency (issue 5, item 7), through the one streaming path
(:class:`codectk.streaming.Streamer`, issue 20).

Rows, per thread count (and on cuda when ``device`` is cuda): the paper-size 48 kHz
symAD (``conf/symAD_vctk_48000_hop300.yaml``, random weights: the time does not depend
on them) encoding and decoding 10 s of real speech (bundled corpus, resampled) in
12.5 ms chunks (600 samples) as one stream, after a warm-up second:

* ``symad_48k_stream_chunk_ms``: the codec's own layers, uncompiled, float32 (engine
  ``module``, the default of ``codectk stream``; until issue 20 this row was the
  hand-written "fast" engine): mean encode + decode compute time per chunk in ms, with
  p50 / p95 / max and the algorithmic delay (12.5 ms, the chunk: no look-ahead) as
  context. Target on 1 thread: <= 6 ms. The authors' code needs 10.7 + 10.5 = 21.2 ms
  per chunk on 1 thread of the 2-core development CPU (``reference_ms``).
* ``..._bf16``: the same with encoder and decoder in bfloat16 (the RVQ search in
  float32; not bit-equal to float32). Same target.
* ``..._compiled`` / ``..._bf16_compiled``: the streaming steps compiled by
  ``torch.compile`` (freezing, GEMM autotuning and the C++ wrapper, for 600-sample
  chunks), float32 and bfloat16, with ``compile_s`` (not part of the per-chunk times).
  Same target. Left out (with a ``skipped`` row) where torch.compile cannot run.

Every row carries ``macs_M``, the multiply-accumulates of one chunk (the streaming
step's convolutions and the RVQ distance products, counted by ``torch.utils.flop_counter``),
and ``fp32_floor_ms`` / ``bf16_floor_ms``: those MACs at this machine's measured GEMM peak
on the same threads (``_measure.gemm_peak_gmacs``), the compute floor of the model.

``quick``: 1 s of speech, the uncompiled float32 row only, a small GEMM for the peak (a
smoke run).
"""

from __future__ import annotations

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "conf/symAD_vctk_48000_hop300.yaml"
AUTHORS_MS = 21.2  # 10.7 ms encode + 10.5 ms decode per 600-sample chunk, 1 thread
TARGET_MS = 6.0


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """See the module doc; returns result rows (``codectk.benchmarks``)."""
    from codectk.benchmarks._measure import gemm_peak_gmacs, speech
    from codectk.errors import CodectkError
    from codectk.inference import build_codec
    from codectk.nn.conv import remove_weight_norm_
    from codectk.streaming import measure_latency

    torch.manual_seed(0)
    codec = remove_weight_norm_(build_codec(CONFIG)).eval()
    macs = chunk_macs(codec)
    seconds = 1.0 if quick else 10.0
    wav = torch.from_numpy(speech(seconds + 1.0, codec.sample_rate))[None]  # (1, T)
    fp32, bf16 = torch.float32, torch.bfloat16
    variants = [("", "module", fp32)]
    if not quick:
        variants += [
            ("_bf16", "module", bf16),
            ("_compiled", "compiled", fp32),
            ("_bf16_compiled", "compiled", bf16),
        ]
    rows = []
    saved = torch.get_num_threads()
    runs = [("cpu", n) for n in threads] + ([("cuda", 1)] if device == "cuda" else [])
    for dev, n in runs:
        torch.set_num_threads(n)
        peak_n = 512 if quick else 2048
        floors = {
            f"{p}_floor_ms": round(macs / (gemm_peak_gmacs(p, n, peak_n) * 1e9) * 1e3, 3)
            for p in ("fp32", "bf16")
        }
        model = codec.to(dev)
        for suffix, engine, dtype in variants:
            if dev == "cuda" and engine != "module":
                continue
            try:
                r = measure_latency(model, wav, 12.5, engine == "compiled", dtype)
            except CodectkError as e:  # the compiled engine without a C++ compiler
                rows.append(
                    {
                        "suite": "audiodec",
                        "name": f"symad_48k_stream_chunk_ms{suffix}",
                        "threads": n,
                        "device": dev,
                        "skipped": str(e),
                    }
                )
                continue
            row = {
                "suite": "audiodec",
                "name": f"symad_48k_stream_chunk_ms{suffix}",
                "metric": "mean encode+decode compute per 12.5 ms chunk",
                "value": round(r["mean_ms"], 3),
                "unit": "ms",
                "threads": n,
                "device": dev,
                "p50_ms": round(r["p50_ms"], 3),
                "p95_ms": round(r["p95_ms"], 3),
                "max_ms": round(r["max_ms"], 3),
                "algorithmic_delay_ms": r["algorithmic_delay_ms"],
                "chunks": r["chunks"],
                "engine": engine,
                "precision": r["precision"],
                **({"compile_s": r["compile_s"]} if "compile_s" in r else {}),
                "macs_M": round(macs / 1e6, 1),
                **floors,
                "config": str(CONFIG.relative_to(REPO)),
                "reference_ms": AUTHORS_MS,
            }
            if n == 1 and dev == "cpu":
                row.update(target=TARGET_MS, target_rule="<=")
            rows.append(row)
        codec.to("cpu")
    torch.set_num_threads(saved)
    return rows


def chunk_macs(codec, chunk: int = 600) -> float:
    """Multiply-accumulates of encoding + decoding one ``chunk``-sample chunk in steady
    state (after one chunk of warm-up), counted on the uncompiled streaming step (with
    oneDNN off, so that every convolution is one the flop counter knows)."""
    from codectk.benchmarks._measure import count_macs
    from codectk.streaming import Streamer

    streamer = Streamer(codec, chunk)
    x = 0.1 * torch.randn(1, codec.channels, 2 * chunk)
    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False  # plain convolutions, which the counter knows
    try:
        streamer(x[..., :chunk])
        return count_macs(lambda: streamer(x[..., chunk:]), codec)
    finally:
        torch.backends.mkldnn.enabled = saved
