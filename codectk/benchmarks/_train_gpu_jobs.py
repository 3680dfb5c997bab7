"""The measurements of the ``train_gpu`` suite (:mod:`codectk.benchmarks.train_gpu`),
each run in its own process by :func:`codectk.benchmarks._measure.in_subprocess`."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from codectk.benchmarks._measure import REPO, best_time, corpus_files, speech

CONFIGS = {
    "dac_16k": "conf/dac_16k_6kbps.yaml",
    "encodec_24k": "conf/encodec_24k_24kbps.yaml",
    "soundstream_24k": "conf/soundstream_24k_6kbps.yaml",
    "esc_base": "conf/esc_16k_base.yaml",
    "hificodec_16k": "conf/hificodec_16k_320d.yaml",
    "symad_48k": "conf/symAD_vctk_48000_hop300.yaml",
    "ladiffcodec_unet": "conf/ladiffcodec_diffusion_16k.yaml",
}
QUICK_CONFIGS = {"dac_16k_tiny": "egs/mini_librispeech/codec1/conf/dac_16k_tiny.yaml"}
VARIANTS = ("host", "sync_free", "channels_last", "compiled")
PRECISIONS = ("bf16", "tf32")
INFERENCE = {"dac_16k": CONFIGS["dac_16k"], "encodec_24k": CONFIGS["encodec_24k"]}
SYNC_CALLS = (
    "cudaStreamSynchronize",
    "cudaDeviceSynchronize",
    "cudaEventSynchronize",
    "cudaMemcpy",
)
LAUNCH_CALLS = (
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cudaLaunchCooperativeKernel",
    "cudaGraphLaunch",
)
STEP_RANGE = "codectk_train_step"
HOST_READS = ("item", "__float__", "__bool__", "__int__", "__index__", "cpu", "tolist", "numpy")


def variant_overrides(variant: str, precision: str, device: str) -> list[str]:
    """Command-line overrides of a training config for one variant and precision."""
    out = ["--amp", "bf16" if precision == "bf16" else "none", "--log_interval", "100000000"]
    if variant == "host":
        out += ["--optim_conf.fused", "false", "--optim2_conf.fused", "false"]
        out += ["--discriminator_batch", "none"]
    elif device != "cuda":  # the CUDA default, asked for explicitly elsewhere
        out += ["--optim_conf.fused", "true", "--optim2_conf.fused", "true"]
    if variant == "compiled":
        out += ["--compile", "true"]
    if variant == "channels_last":
        out += ["--discriminator_memory_format", "channels_last"]
    return out


def train_config(config: str, overrides: list[str], quick: bool):
    """The :class:`~codectk.config.TrainConfig` of a benchmark config with ``overrides``.

    LaDiffCodec's U-Net config names its frozen parts at run time
    (``codectk.bin.ladiffcodec_prepare`` fills them in from the phase-1 and phase-2
    experiments): here from the paper-size phase configs, untrained.
    """
    from codectk.config import apply_overrides, build_train_config, load_yaml

    path = REPO / (QUICK_CONFIGS if quick else CONFIGS)[config]
    data = load_yaml(path)
    if config == "ladiffcodec_unet":
        codec = load_yaml(REPO / "conf/ladiffcodec_codec_16k.yaml")
        ae = load_yaml(REPO / "conf/ladiffcodec_ae_16k.yaml")
        data["codec_conf"].update(
            discrete_codec=codec["codec"],
            discrete_codec_conf=codec["codec_conf"],
            ae_conf=ae["codec_conf"],
        )
    return build_train_config(apply_overrides(data, overrides), where=str(path))


def _data(tmp: str, sample_rate: int) -> str:
    from codectk.dump import dump_wav_scp

    src = Path(tmp, "src")
    src.mkdir()
    (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in corpus_files(4)))
    dump_wav_scp(src / "wav.scp", sample_rate, f"{tmp}/wav", f"{tmp}/d")
    return f"{tmp}/d"


def _profile_counts(prof, device: str) -> dict:
    """Per profiled step: kernel launches and synchronisations inside the step ranges,
    and the GPU busy fraction over them."""
    from torch.autograd import DeviceType

    events = prof.events()
    steps = [e for e in events if e.name == STEP_RANGE and e.device_type == DeviceType.CPU]
    spans = [(e.time_range.start, e.time_range.end) for e in steps]

    def inside(e) -> bool:
        t = e.time_range.start
        return any(a <= t <= b for a, b in spans)

    n = max(len(spans), 1)
    runtime = [e for e in events if e.device_type == DeviceType.CPU and inside(e)]
    launches = sum(e.name in LAUNCH_CALLS for e in runtime)
    syncs = sum(e.name in SYNC_CALLS for e in runtime)
    gpu = sorted(  # kernels, copies and memsets; not the annotations mirrored on the GPU
        (e.time_range.start, e.time_range.end)
        for e in events
        if e.device_type == DeviceType.CUDA
        and not e.is_user_annotation
        and e.time_range.end > e.time_range.start
    )
    busy, end = 0.0, None
    t0 = spans[0][0] if spans else 0.0
    t1 = max([spans[-1][1] if spans else 0.0] + [b for _, b in gpu])
    for a, b in gpu:  # union of the device intervals within [t0, t1]
        a, b = max(a, t0), min(b, t1)
        if b <= a:
            continue
        if end is not None and a < end:
            a = end
        if b > a:
            busy += b - a
            end = b if end is None else max(end, b)
    return {
        "launches_per_step": launches / n if device == "cuda" else None,
        "syncs_per_step": syncs / n if device == "cuda" else None,
        "busy_fraction": busy / (t1 - t0) if device == "cuda" and t1 > t0 else None,
    }


def train_job(
    config: str, variant: str, precision: str, device: str, steps: int, warmup: int, quick: bool
) -> dict:
    """Time ``steps`` training steps of one config, variant and precision (see module doc)."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from codectk.train.trainer import Trainer

    # torch's defaults in both precisions, as a recipe runs: cuDNN convolutions in TF32
    # (allow_tf32 True), float32 matrix products in float32 ("tf32": amp none)
    overrides = variant_overrides(variant, precision, device)
    overrides += ["--discriminator_start_step", "0"]  # every step trains both networks
    if quick:
        overrides += ["--batch_size", "2"]
    conf = train_config(config, overrides, quick)
    with tempfile.TemporaryDirectory() as tmp:
        data = _data(tmp, conf.codec_conf["sample_rate"])
        t = Trainer(conf, Path(tmp, "exp"), data, data, device=device)
        n_prof = 1 if quick else 3
        batches = [t.train_set[s] for s in range(1, warmup + steps + n_prof + 1)]
        for b in batches:  # preloaded: the loader is not measured
            b.wav = b.wav.to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        reads = [0]

        def run(first: int, count: int, ranged: bool = False) -> None:
            for s in range(first, first + count):
                t.step = s
                with record_function(STEP_RANGE) if ranged else contextlib.nullcontext():
                    parts = t._train_step(batches[s - 1])
                    t.steplog.add(s, batches[s - 1].utts, parts, t._checks, t._skips)
            t._read_steps({}, {})  # the logging step's one read
            sync()

        run(1, warmup)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        real = {name: getattr(torch.Tensor, name) for name in HOST_READS}

        def counting(name):
            def read(tensor, *a, **k):
                reads[0] += 1
                return real[name](tensor, *a, **k)

            return read

        for name in HOST_READS:  # host reads of the timed steps (the log read excluded)
            setattr(torch.Tensor, name, counting(name))
        try:
            t0 = time.perf_counter()
            run(warmup + 1, steps)
            seconds = time.perf_counter() - t0
        finally:
            for name in HOST_READS:
                setattr(torch.Tensor, name, real[name])
        reads[0] -= 1  # the tolist of the one log read
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities) as prof:
            run(warmup + steps + 1, n_prof, ranged=True)
        counts = _profile_counts(prof, device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return {
        "steps_per_s": steps / seconds,
        "audio_s_per_s": steps * conf.batch_size * conf.segment_duration / seconds,
        "host_reads_per_step": reads[0] / steps,
        "peak_MiB": peak,
        "batch_size": conf.batch_size,
        "segment_seconds": conf.segment_duration,
        **counts,
    }


def reference_job(device: str, steps: int, warmup: int, quick: bool) -> dict:
    """(compare env) Steps/s of the DAC authors' training step at paper size (16 kHz,
    batch 72 x 0.38 s as ``16khz.yml``), float32 with ``cudnn.benchmark``."""
    import time

    import torch

    from codectk.benchmarks import _dac_reference_step as ref

    torch.backends.cudnn.benchmark = True  # scripts/train.py:27
    gen, disc, batch, seconds = ref.DAC_16K, ref.DISCRIMINATOR_16K, 72, 0.38
    if quick:
        gen = {**gen, "encoder_dim": 8, "decoder_dim": 64, "n_codebooks": 4, "codebook_size": 256}
        disc, batch = {**disc, "periods": [2], "fft_sizes": [512, 256]}, 2
    state = ref.ReferenceState(gen, disc, device=device, logged_losses=True)
    # descript-audio-codec 1.0.0's transposed convolutions of odd stride drop one sample
    # each: its 16 kHz decoder gives 320 F - 8 samples for F frames, and its losses then
    # fail on 6080-sample clips (6072 vs 6080). Clips of 6080 - 8 samples decode to their
    # own length, so the step runs as released on 0.13% less audio.
    length = round(seconds * 16000) - 8
    wav = torch.from_numpy(speech(batch * length / 16000 + 1, 16000)).to(device)
    wav = wav[: batch * length].reshape(batch, 1, length)  # (B, 1, T)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        ref.reference_step(state, wav, keep_grads=False)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        ref.reference_step(state, wav, keep_grads=False)
    sync()
    return {
        "steps_per_s": steps / (time.perf_counter() - t0),
        "batch_size": batch,
        "segment_samples": length,
    }


def inference_job(config: str, device: str, precision: str, seconds: float, quick: bool) -> dict:
    """Encode + decode of ``seconds`` of speech at batch 1 (best of 5 after a warm-up)."""
    import torch

    from codectk.inference import build_codec, prepare_for_inference

    path = REPO / (QUICK_CONFIGS if quick else INFERENCE)[config]
    codec = prepare_for_inference(build_codec(path).to(device), precision=precision)
    x = torch.from_numpy(speech(seconds, codec.sample_rate))[None, None].to(device)  # (1,1,T)
    sync = torch.cuda.synchronize if device == "cuda" else None
    with torch.inference_mode():
        wall, _ = best_time(lambda: codec.decode(codec.encode(x)), 5, sync)
    return {"ms": wall * 1e3}
