"""codectk's EnCodec 24 kHz (6 kbps) and DAC 16 kHz (6 kbps) against the authors'
packages (``encodec`` 0.1.1, ``descript-audio-codec`` 1.0.0) with the same random
weights, on the same 10 s of bundled speech: encode + decode real-time factor, peak
memory, codectk's time as a fraction of the reference's (target <= 0.5) and the largest
output difference; then the same for codectk's opt-in bfloat16 inference
(``precision="bf16"``), whose output is not the reference's (its SNR against it and the
share of equal codes are given).

The float32 ratio row carries the work of one encode + decode (``macs_G``, convolutions,
matrix products and LSTMs), the time it would take at this machine's measured float32
peak (``s_at_fp32_peak``, :func:`codectk.benchmarks._measure.gemm_peak_gmacs`) and the
share of that peak the target needs over the whole model (``target_needs_peak_share``):
above about 0.8 the float32 target is out of reach on this CPU.

The reference model is built at random in the comparison environment
(``tools/venv-compare``, ``bash tools/install_compare_env.sh``; without it the rows are
``skipped`` with that command) and its state dict is converted with
:mod:`codectk.convert`. Each measurement is a fresh process that loads the weights,
warms up once and keeps the best of the repeats. The reference runs as its authors
ship it (``torch.no_grad``, PyTorch's default allocator: ``THP_MEM_ALLOC_ENABLE=0``),
once more with huge pages on (``reference+THP``, what codectk's entry points set);
codectk runs as ``codectk decode`` does (weight norm folded, ``inference_mode``, huge
pages). EnCodec runs without segmenting and volume normalisation (codectk codes whole
utterances and sends no scale); DAC 1.0.0's decoder drops the last sample per odd
stride, so outputs are compared up to 1024 samples before its end.
"""

from __future__ import annotations

import tempfile

from codectk.benchmarks._measure import (
    COMPARE_PYTHON,
    REPO,
    best_time,
    gemm_peak_gmacs,
    in_subprocess,
    speech,
)
from codectk.benchmarks._runner import rtf_row

MODELS = {
    "encodec_24k_6kbps": dict(family="encodec", config="conf/encodec_24k_24kbps.yaml", kbps=6.0),
    "dac_16k_6kbps": dict(family="dac", config="conf/dac_16k_6kbps.yaml", kbps=None),
}
DAC_16K = dict(
    sample_rate=16000, encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=12
)
TARGET_RATIO = 0.5
BUILD_HINT = "bash tools/install_compare_env.sh"


def _reference_model(family: str):
    """The authors' model with random weights (seed 0; EnCodec codebooks drawn N(0, 1))."""
    import torch

    torch.manual_seed(0)
    if family == "encodec":
        import encodec

        ref = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
        for layer in ref.quantizer.vq.layers:  # random codebooks, as after training
            layer._codebook.embed.normal_()
            layer._codebook.inited.fill_(1)
        ref.segment, ref.normalize = None, False
        ref.set_target_bandwidth(6.0)
        return ref.eval()
    import dac

    return dac.DAC(**DAC_16K).eval()


def prepare_job(family: str, seconds: float, out_dir: str) -> dict:
    """(compare env) Write the random reference weights and the input speech."""
    import numpy as np
    import torch

    ref = _reference_model(family)
    if family == "encodec":
        torch.save(ref.state_dict(), f"{out_dir}/ref.th")
        sr = 24000
    else:
        ref.save(f"{out_dir}/ref.th", package=False)
        sr = 16000
    np.save(f"{out_dir}/input.npy", speech(seconds, sr))
    return {"sample_rate": sr}


def reference_job(family: str, threads: int, repeats: int, out_dir: str) -> dict:
    """(compare env) Time the authors' encode + decode; write its output and codes."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    ref = _reference_model(family)
    state = torch.load(f"{out_dir}/ref.th", map_location="cpu", weights_only=True)
    ref.load_state_dict(state if family == "encodec" else state["state_dict"])
    x = torch.from_numpy(np.load(f"{out_dir}/input.npy"))[None, None]  # (1, 1, T)
    out = {}

    def step():
        if family == "encodec":
            frames = ref.encode(x)
            out["codes"], out["wav"] = frames[0][0], ref.decode(frames)
        else:
            z, codes, *_ = ref.encode(ref.preprocess(x, 16000))
            out["codes"], out["wav"] = codes, ref.decode(z)

    with torch.no_grad():
        wall, cpu = best_time(step, repeats)
    np.save(f"{out_dir}/ref_wav.npy", out["wav"][0, 0].numpy())
    np.save(f"{out_dir}/ref_codes.npy", out["codes"][0].numpy())
    return {"seconds": wall, "cpu_seconds": cpu}


def codectk_job(
    model: str,
    threads: int,
    repeats: int,
    out_dir: str,
    compile: bool = False,
    precision: str = "fp32",
    count: bool = False,
) -> dict:
    """(codectk env) Convert the reference weights, time encode + decode, compare outputs
    (and, with ``count``, count the multiply-accumulates of one encode + decode)."""
    import time

    import numpy as np
    import torch

    from codectk.config import load_train_config
    from codectk.convert import convert_checkpoint
    from codectk.inference import prepare_for_inference

    torch.set_num_threads(threads)
    spec = MODELS[model]
    conf = load_train_config(REPO / spec["config"])
    codec = prepare_for_inference(
        convert_checkpoint(spec["family"], f"{out_dir}/ref.th", conf),
        compile=compile,
        precision=precision,
    )
    n_q = codec.n_quantizers_for_bandwidth(spec["kbps"])
    x = torch.from_numpy(np.load(f"{out_dir}/input.npy"))[None, None]  # (1, 1, T)
    out = {}

    def step():
        out["codes"] = codec.encode(x, n_q)
        out["wav"] = codec.decode(out["codes"])

    with torch.inference_mode():
        t0 = time.perf_counter()
        step()  # compiles when compile=True
        first = time.perf_counter() - t0
        wall, cpu = best_time(step, repeats)
    y, ref = out["wav"][0, 0].numpy(), np.load(f"{out_dir}/ref_wav.npy")
    n = min(len(y), len(ref))
    n -= 0 if len(y) == len(ref) else 1024
    codes, ref_codes = out["codes"][0].numpy(), np.load(f"{out_dir}/ref_codes.npy")
    err = float(np.sum((y[:n] - ref[:n]).astype(np.float64) ** 2))
    snr = 10 * np.log10(float(np.sum(ref[:n].astype(np.float64) ** 2)) / max(err, 1e-30))
    macs = None
    if count:
        from codectk.benchmarks._measure import count_macs

        with torch.inference_mode():
            macs = count_macs(step, codec)
    return {
        "macs": macs,
        "snr_db": float(snr),
        "seconds": wall,
        "cpu_seconds": cpu,
        "first_call_seconds": first,
        "max_abs_diff": float(np.abs(y[:n] - ref[:n]).max()),
        "codes_equal": float((codes == ref_codes).mean())
        if codes.shape == ref_codes.shape
        else 0.0,
    }


def _vs_reference(name: str, ours: dict, ref: dict, /, **context) -> dict:
    """The ``time vs reference`` row: codectk's time ``ours["seconds"]`` over the
    reference's (target <= :data:`TARGET_RATIO`), with the ratio of their CPU times and the
    ``context`` keys."""
    return dict(
        name=name,
        metric="time vs reference",
        value=ours["seconds"] / ref["seconds"],
        unit="x",
        target=TARGET_RATIO,
        target_rule="<=",
        cpu_time_ratio=round(ours["cpu_seconds"] / ref["cpu_seconds"], 3),
        **context,
    )


def _skipped(model: str, threads: int, device: str, why: str) -> dict:
    return dict(
        name=model,
        metric="time vs reference",
        value=None,
        unit="x",
        threads=threads,
        device=device,
        skipped=why,
    )


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """Rows per model and thread count: RTF and peak RSS of the reference (as shipped and
    with huge pages) and of codectk, codectk / reference time (target <= 0.5), max abs
    output difference and share of equal codes."""
    if device != "cpu":
        return []  # the comparison is a CPU one (the reference environment is CPU torch)
    if not COMPARE_PYTHON.exists():
        why = f"no comparison environment {COMPARE_PYTHON}; build it with `{BUILD_HINT}`"
        return [_skipped(m, t, device, why) for m in MODELS for t in threads]
    seconds, repeats = (1.0, 1) if quick else (10.0, 2)
    models = ["encodec_24k_6kbps"] if quick else list(MODELS)
    rows = []
    for model in models:
        family = MODELS[model]["family"]
        with tempfile.TemporaryDirectory() as tmp:
            in_subprocess(
                "codectk.benchmarks.reference:prepare_job",
                dict(family=family, seconds=seconds, out_dir=tmp),
                python=COMPARE_PYTHON,
            )
            for th in threads:
                kw = dict(family=family, threads=th, repeats=repeats, out_dir=tmp)
                ref = in_subprocess(
                    "codectk.benchmarks.reference:reference_job",
                    kw,
                    python=COMPARE_PYTHON,
                    env={"THP_MEM_ALLOC_ENABLE": "0"},
                )
                ref_thp = None
                if not quick:
                    ref_thp = in_subprocess(
                        "codectk.benchmarks.reference:reference_job",
                        kw,
                        python=COMPARE_PYTHON,
                        env={"THP_MEM_ALLOC_ENABLE": "1"},
                    )
                ours, ours_bf16 = (
                    in_subprocess(
                        "codectk.benchmarks.reference:codectk_job",
                        dict(
                            model=model,
                            threads=th,
                            repeats=repeats,
                            out_dir=tmp,
                            precision=precision,
                            count=precision == "fp32" and not quick,
                        ),
                        env={"THP_MEM_ALLOC_ENABLE": "1"},
                    )
                    for precision in ("fp32", "bf16")
                )
                common = dict(threads=th, device=device)
                who_rows = (
                    ("reference", ref),
                    ("reference+THP", ref_thp),
                    ("codectk", ours),
                    ("codectk bf16", ours_bf16),
                )
                for who, r in who_rows:
                    if r is None:
                        continue
                    rows.append(rtf_row(f"{model} {who}", r, seconds, **common))
                    rows.append(
                        dict(
                            name=f"{model} {who}",
                            metric="peak RSS",
                            value=r["peak_rss_MiB"],
                            unit="MiB",
                            **common,
                        )
                    )
                extra = {}
                if ref_thp is not None:
                    extra["vs_reference+THP"] = round(ours["seconds"] / ref_thp["seconds"], 3)
                if ours["macs"]:  # the float32 target against this machine's measured peak
                    peak = gemm_peak_gmacs("fp32", th) * 1e9
                    extra["macs_G"] = round(ours["macs"] / 1e9, 1)
                    extra["s_at_fp32_peak"] = round(ours["macs"] / peak, 3)
                    extra["target_needs_peak_share"] = round(
                        ours["macs"] / peak / (TARGET_RATIO * ref["seconds"]), 2
                    )
                rows.append(_vs_reference(model, ours, ref, **extra, **common))
                rows.append(
                    _vs_reference(
                        f"{model} bf16",
                        ours_bf16,
                        ref,
                        snr_db=round(ours_bf16["snr_db"], 1),
                        codes_equal=round(ours_bf16["codes_equal"], 4),
                        **common,
                    )
                )
                rows.append(
                    dict(
                        name=model,
                        metric="max abs output difference",
                        value=ours["max_abs_diff"],
                        unit="",
                        target=1e-4,
                        target_rule="<=",
                        codes_equal=ours["codes_equal"],
                        **common,
                    )
                )
    return rows
