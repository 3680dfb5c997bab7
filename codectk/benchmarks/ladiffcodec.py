"""LaDiffCodec decoding speed and the fast sampler's quality (issue 7, item 5).

Rows (seconds are wall-clock, best of the repeats, on CPU unless ``device`` says cuda):

* ``unet_step``: one U-Net call on 2.4 s of 16 kHz audio (1200 latent frames) at paper
  size (135,118,976 parameters, random weights); the authors' code takes 1.12 s per
  step on 1 thread of this CPU (``reference_s``).
* ``decode_fast``: a whole ``decode`` (codec features, ``sampling_steps`` DDIM steps,
  continuous decoder) of 2.4 s at paper size; target: at least 10 times faster than the
  authors' 100-step sampler, i.e. <= 100 * 1.12 / 10 = 11.2 s.
* ``decode_100_steps`` and ``speedup``: the same with 100 DDIM steps, and the ratio
  (target >= 10).
* ``pesq_fast``, ``pesq_100_steps``, ``pesq_loss_fast``: wide-band PESQ of the tiny
  trained model (``egs/mini_librispeech/codec1/exp/codec_ladiffcodec_diffusion_16k_tiny``,
  made by ``run_ladiffcodec.sh``) on the test utterances, fast vs 100 steps (target: the
  fast sampler loses at most 0.05). Skipped when that model does not exist, and in
  ``quick`` mode.

``quick`` swaps the paper-size model for a tiny one with one repeat (a smoke run).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_EXP = REPO / "egs/mini_librispeech/codec1/exp/codec_ladiffcodec_diffusion_16k_tiny"
AUTHORS_STEP_S = 1.12  # s per U-Net step, 2.4 s of audio, 1 thread (issue 7)
AUTHORS_STEPS = 100
SECONDS = 2.4


def _paper_model(quick: bool):
    from codectk.config import load_train_config
    from codectk.models import CODECS
    from codectk.registry import merge_sections

    codec_cfg = load_train_config(REPO / "conf/ladiffcodec_codec_16k.yaml")
    ae_cfg = load_train_config(REPO / "conf/ladiffcodec_ae_16k.yaml")
    conf = yaml.safe_load((REPO / "conf/ladiffcodec_diffusion_16k.yaml").read_text())["codec_conf"]
    conf.update(
        discrete_codec=codec_cfg.codec,
        discrete_codec_conf=codec_cfg.codec_conf,
        ae_conf=ae_cfg.codec_conf,
    )
    if quick:
        conf["diff_dims"] = 16
        small_ae = {"encoder": {"dimension": 16, "n_filters": 4, "lstm": 0}}
        conf["ae_conf"] = merge_sections(conf["ae_conf"], small_ae)
        conf["discrete_codec_conf"] = merge_sections(
            conf["discrete_codec_conf"], {"encoder": {"n_filters": 4}}
        )
    torch.manual_seed(0)
    return CODECS.build("ladiffcodec", conf).eval()


def _relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (results carry no machine paths)."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _row(name, metric, value, unit, threads, device, **extra) -> dict:
    return {
        "suite": "ladiffcodec",
        "name": name,
        "metric": metric,
        "value": value,
        "unit": unit,
        "threads": threads,
        "device": device,
        **extra,
    }


def _speed_rows(threads: int, device: str, quick: bool) -> list[dict]:
    model = _paper_model(quick).to(device)
    config = "tiny (quick)" if quick else "paper size (conf/ladiffcodec_*_16k.yaml)"
    repeats = 1 if quick else 2
    n = round(SECONDS * model.sample_rate)
    wav = torch.randn(1, 1, n, device=device) * 0.1
    frames = model.latent_frames(n)
    x = torch.randn(1, model.ae.dimension, frames, device=device)
    c = torch.randn(1, model.diffusion.denoiser.cond_channels, frames, device=device)
    t = torch.tensor([500], device=device)
    unet = model.diffusion.denoiser
    with torch.inference_mode():
        unet(x, t, c)  # warm-up
        step = _best(lambda: unet(x, t, c), repeats + 1)
        codes = model.encode(wav)
        fast_steps = model.sampling_steps
        fast = _best(lambda: model.decode(codes), repeats)
        rows = [
            _row(
                "unet_step",
                "seconds per U-Net step, 2.4 s audio",
                step,
                "s",
                threads,
                device,
                config=config,
                reference_s=AUTHORS_STEP_S,
                frames=frames,
            ),
            _row(
                "decode_fast",
                f"decode 2.4 s, {fast_steps} DDIM steps",
                fast,
                "s",
                threads,
                device,
                config=config,
                target=AUTHORS_STEPS * AUTHORS_STEP_S / 10,
                target_rule="<=",
                sampling_steps=fast_steps,
            ),
        ]
        if not quick:
            model.set_sampling(AUTHORS_STEPS)
            slow = _best(lambda: model.decode(codes), 1)
            rows += [
                _row(
                    "decode_100_steps",
                    "decode 2.4 s, 100 DDIM steps",
                    slow,
                    "s",
                    threads,
                    device,
                    config=config,
                    sampling_steps=AUTHORS_STEPS,
                ),
                _row(
                    "speedup",
                    f"100-step / {fast_steps}-step decode time",
                    slow / fast,
                    "x",
                    threads,
                    device,
                    config=config,
                    target=10.0,
                    target_rule=">=",
                ),
            ]
    return rows


def _quality_rows(threads: int, device: str) -> list[dict]:
    from codectk.inference import load_codec
    from codectk.io.audio import read_audio, to_mono
    from codectk.io.datadir import read_scp
    from codectk.metrics.quality import pesq_wb

    model_file = TINY_EXP / "valid.diffusion.ave.pt"
    test_scp = TINY_EXP.parents[1] / "dump/raw/test/wav.scp"
    if not model_file.exists() or not test_scp.exists():
        return [
            _row(
                "pesq_loss_fast",
                "PESQ(100 steps) - PESQ(fast), tiny model",
                None,
                "PESQ",
                threads,
                device,
                skipped=f"no trained tiny model at {_relative(model_file)}: run "
                "egs/mini_librispeech/codec1/run_ladiffcodec.sh",
            )
        ]
    model = load_codec(TINY_EXP, "valid.diffusion.ave.pt", device)
    fast_steps = model.sampling_steps
    scores: dict[int, list[float]] = {fast_steps: [], AUTHORS_STEPS: []}
    with torch.inference_mode():
        for spec in read_scp(test_scp).values():
            wav, fs = read_audio(spec)
            ref = to_mono(wav)
            codes = model.encode(torch.from_numpy(ref)[None, None].to(device))
            for steps in scores:
                model.set_sampling(steps)
                deg = model.decode(codes)[0, 0, : len(ref)].float().cpu().numpy()
                scores[steps].append(pesq_wb(ref, deg, fs))
    mean = {k: sum(v) / len(v) for k, v in scores.items()}
    common = dict(config=_relative(TINY_EXP), utterances=len(scores[fast_steps]))
    return [
        _row(
            "pesq_fast",
            f"mean PESQ, {fast_steps} DDIM steps",
            mean[fast_steps],
            "PESQ",
            threads,
            device,
            **common,
        ),
        _row(
            "pesq_100_steps",
            "mean PESQ, 100 DDIM steps",
            mean[AUTHORS_STEPS],
            "PESQ",
            threads,
            device,
            **common,
        ),
        _row(
            "pesq_loss_fast",
            "PESQ(100 steps) - PESQ(fast)",
            mean[AUTHORS_STEPS] - mean[fast_steps],
            "PESQ",
            threads,
            device,
            target=0.05,
            target_rule="<=",
            **common,
        ),
    ]


def run(threads: list[int], device: str, quick: bool) -> list[dict]:
    """Measure LaDiffCodec's decoding speed (per thread count) and fast-sampler quality.

    Args:
        threads (list[int]): torch CPU thread counts to measure with.
        device (str): "cpu" or "cuda".
        quick (bool): tiny model, one repeat, no 100-step run and no PESQ.

    Returns:
        list[dict]: result rows (see :mod:`codectk.benchmarks`).
    """
    rows: list[dict] = []
    saved = torch.get_num_threads()
    try:
        for n in threads if device == "cpu" else [saved]:
            torch.set_num_threads(n)
            rows += _speed_rows(n, device, quick)
        if not quick:
            torch.set_num_threads(threads[0] if device == "cpu" else saved)
            rows += _quality_rows(torch.get_num_threads(), device)
    finally:
        torch.set_num_threads(saved)
    return rows
