"""ESC encode + decode speed (issue 6, item 5).

Rows, per thread count: ESC-Base (``conf/esc_16k_base.yaml``) and ESC-Large
(``conf/esc_16k_large.yaml``) with random weights (the time does not depend on them)
encoding 10 s of real 16 kHz speech (bundled corpus) at 6 streams (9 kbps) and decoding
the codes, under ``torch.inference_mode``:

* ``esc_{base,large}_encode_decode_10s``: float32, best wall-clock seconds of 3 runs after
  a warm-up, with the best process CPU seconds, the encode and decode shares, the
  authors' time, the multiply-accumulates of one encode + decode (``macs_G``, counted by
  ``torch.utils.flop_counter``) and ``fp32_floor_s``: those MACs at this machine's measured
  float32 matrix-product throughput (:func:`~codectk.benchmarks._measure.gemm_peak_gmacs`),
  a bound no float32 implementation beats.
* ``esc_{base,large}_encode_decode_10s_bf16``: the same with
  ``prepare_for_inference(codec, precision="bf16")`` (Swin stages and patch embeddings in
  bfloat16, cross-scale quantizer in float32), plus ``codes_equal`` (share of the codes
  equal to the float32 codes), ``snr_db`` (decoded waveform vs the float32 one, each from
  its own codes) and ``snr_db_fp32_codes`` (bfloat16 vs float32 decoding of the float32
  codes), and ``bf16_floor_s``.

The authors' code takes 3.96 s (Base) and 7.39 s (Large) on 1 thread of the 2-core
development CPU; the targets are half that, 1.98 s and 3.70 s on 1 thread, for both rows.

``quick``: 1 s of speech, ESC-Base only, one repeat, no floors (a smoke run).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from codectk.benchmarks._measure import best_time, count_macs, gemm_peak_gmacs, speech

REPO = Path(__file__).resolve().parents[2]
MODELS = {  # name: (config, authors' seconds on 1 thread, target seconds)
    "base": ("conf/esc_16k_base.yaml", 3.96, 1.98),
    "large": ("conf/esc_16k_large.yaml", 7.39, 3.70),
}


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """10 log10(|reference|^2 / |reference - estimate|^2) in dB (inf when equal)."""
    noise = (reference - estimate).double().pow(2).sum()
    signal = reference.double().pow(2).sum()
    return float("inf") if noise == 0 else float(10 * torch.log10(signal / noise))


def _row(name: str, codec, wav: torch.Tensor, repeats: int, **context) -> dict:
    """Time ``codec`` on ``wav`` (1, 1, T); the row keeps its codes and output in
    ``_codes`` / ``_wav`` for the comparisons."""
    with torch.inference_mode():
        wall, cpu = best_time(lambda: codec.decode(codec.encode(wav, 18)), repeats)
        t0 = time.perf_counter()
        codes = codec.encode(wav, 18)
        t1 = time.perf_counter()
        out = codec.decode(codes)
        t2 = time.perf_counter()
    return {
        "suite": "esc",
        "name": name,
        "metric": f"encode + decode of {wav.shape[-1] / 16000:g} s of 16 kHz speech at 6 "
        "streams (9 kbps)",
        "value": round(wall, 4),
        "unit": "s",
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "cpu_s": round(cpu, 4),
        "encode_s": round(t1 - t0, 4),
        "decode_s": round(t2 - t1, 4),
        **context,
        "_codes": codes,
        "_wav": out,
    }


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """See the module doc; returns result rows (``codectk.benchmarks``)."""
    from codectk.inference import build_codec, prepare_for_inference

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
        low = prepare_for_inference(copy.deepcopy(codec), precision="bf16")
        with torch.inference_mode():
            macs = count_macs(lambda c=codec: c.decode(c.encode(wav, 18)))
        for n in threads:
            torch.set_num_threads(n)
            tag = f"esc_{name}_encode_decode_{seconds:g}s"
            context = dict(config=config, reference_s=authors_s)
            fp32 = _row(tag, codec, wav, repeats, **context)
            fp32["macs_G"] = round(macs / 1e9, 2)
            bf16 = _row(f"{tag}_bf16", low, wav, repeats, precision="bf16", **context)
            with torch.inference_mode():
                from_fp32_codes = low.decode(fp32["_codes"])
            bf16.update(
                macs_G=round(macs / 1e9, 2),
                codes_equal=round(float((bf16["_codes"] == fp32["_codes"]).float().mean()), 4),
                snr_db=round(snr_db(fp32["_wav"], bf16["_wav"]), 2),
                snr_db_fp32_codes=round(snr_db(fp32["_wav"], from_fp32_codes), 2),
            )
            if not quick:  # the throughput probes take seconds
                fp32["fp32_floor_s"] = round(macs / gemm_peak_gmacs("fp32", n) / 1e9, 3)
                bf16["bf16_floor_s"] = round(macs / gemm_peak_gmacs("bf16", n) / 1e9, 3)
            for row in (fp32, bf16):
                del row["_codes"], row["_wav"]
                if n == 1 and not quick:
                    row.update(target=target_s, target_rule="<=")
                rows.append(row)
    torch.set_num_threads(saved)
    return rows
