"""Stage 6: encode and decode a data dir with a trained codec.

Usage (one job of a ``run.pl JOB=1:N`` array)::

    python -m codectk.bin.codec_inference --model exp/codec_x --model_file valid.mel_distance.ave.pt \\
        --in_scp log/keys.3.scp --out_dir exp/codec_x/decode_test/log/output.3 \\
        --wav_dir exp/codec_x/decode_test/wav [--target_bandwidth 1.6] [--device cpu] \\
        [--batch_size 8] [--num_threads 1] [--compile true] [--precision bf16]

Writes ``<wav_dir>/<utt>.wav`` (at the codec's rate, trimmed to the input length) and
``<out_dir>/{wav.scp,codes.ark,codes.scp,codes.json}``. Input audio at another rate
is an error (stage 2 dumps at ``--fs``). ``--batch_size`` utterances share a forward
where that leaves each one's codes and waveform as when decoded alone
(:mod:`codectk.batching`); weight norm is folded at load; ``--compile true`` adds
``torch.compile`` (opt-in; the first batch of each shape compiles); ``--precision bf16``
runs encoder and decoder in bfloat16 (opt-in, see
:func:`codectk.inference.prepare_for_inference`).
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from codectk.batching import decode_batch, encode_batch, mixed_length_min_frames, plan_batches
from codectk.bin.common import (
    add_device_args,
    add_model_args,
    add_precision_arg,
    parser,
    run,
    set_num_threads,
    str2bool,
)
from codectk.config import load_yaml
from codectk.inference import load_codec, prepare_for_inference
from codectk.io.audio import AudioError, read_audio, to_mono, write_audio
from codectk.io.codes import write_codes
from codectk.io.datadir import read_scp, write_scp
from codectk.log import setup_logging, timed

READ_AHEAD = 16  # batches of utterances read at a time, sorted by length within


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    add_model_args(p)
    p.add_argument("--in_scp", required=True, help="wav.scp to decode")
    p.add_argument("--out_dir", required=True, help="folder for this job's wav.scp and codes")
    p.add_argument("--wav_dir", required=True, help="folder for decoded WAV files")
    p.add_argument(
        "--target_bandwidth",
        type=float,
        default=None,
        help="kbps, rounded down to the model's nearest bitrate (default: all codebooks)",
    )
    p.add_argument(
        "--sampling_steps",
        type=int,
        default=None,
        help="denoising steps of a diffusion decoder (LaDiffCodec; default: its config's)",
    )
    add_device_args(p)
    p.add_argument("--batch_size", type=int, default=1, help="utterances per forward")
    p.add_argument(
        "--compile", type=str2bool, default=False, help="torch.compile the codec (opt-in)"
    )
    add_precision_arg(p)
    p.add_argument("--config", default=None, help="YAML of option defaults (inference_config)")
    args = p.parse_args(argv)
    if args.config:
        options = load_yaml(args.config)
        known = {a.dest for a in p._actions} - {"help", "config"}
        unknown = sorted(set(options) - known)
        if unknown:
            p.error(f"{args.config}: unknown option(s) {unknown}; valid: {sorted(known)}")
        p.set_defaults(**options)
        args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.decode")
    set_num_threads(args.num_threads)
    if args.batch_size < 1:
        p.error(f"--batch_size must be >= 1, got {args.batch_size}")
    codec = load_codec(args.model, args.model_file, args.device)
    if args.sampling_steps is not None:
        if not hasattr(codec, "set_sampling"):
            p.error(
                f"--sampling_steps {args.sampling_steps}: {type(codec).__name__} has no "
                "diffusion decoder (only LaDiffCodec samples)"
            )
        try:
            codec.set_sampling(args.sampling_steps)
        except ValueError as exc:
            p.error(f"--sampling_steps: {exc}")
        log.info("diffusion decoder: %d %s steps", codec.sampling_steps, codec.sampler)
    prepare_for_inference(codec, compile=args.compile, precision=args.precision)
    n_q, _ = codec.resolve_bandwidth(args.target_bandwidth)  # rounded down, with a note
    min_frames = mixed_length_min_frames(codec)
    log.info(
        "codec %s: %d Hz, %d codebooks -> %.3f kbps; batches of up to %d (%s lengths)",
        type(codec).__name__,
        codec.sample_rate,
        n_q,
        codec.bitrate(n_q),
        args.batch_size,
        "equal" if min_frames is None else f"mixed from {min_frames} frames",
    )
    table = list(read_scp(args.in_scp).items())
    wav_dir = Path(args.wav_dir).resolve()
    out_wav, all_codes = {}, {}
    window = READ_AHEAD * args.batch_size
    with timed(f"decoding {len(table)} utterances"), torch.inference_mode():
        for first in range(0, len(table), window):
            items = table[first : first + window]
            wavs = [
                _read(spec, f"{args.in_scp}:{first + i}", codec)
                for i, (_, spec) in enumerate(items, 1)
            ]
            frames = [math.ceil(len(w) / codec.hop_length) for w in wavs]
            results = {}
            for batch in plan_batches(frames, args.batch_size, min_frames):
                xs = [torch.from_numpy(wavs[i]).to(args.device) for i in batch]  # (T_i,)
                codes = encode_batch(codec, xs, n_q)  # (K, F_i) each
                for i, c, y in zip(batch, codes, decode_batch(codec, codes)):
                    results[i] = (c, y[: len(wavs[i])])
            for i, (utt, _) in enumerate(items):  # scp order
                codes, y = results[i]
                dst = wav_dir / f"{utt}.wav"
                write_audio(dst, y.float().cpu().numpy(), codec.sample_rate)
                out_wav[utt] = str(dst)
                all_codes[utt] = codes.cpu().numpy().astype(np.int64)
    out = Path(args.out_dir)
    write_scp(out / "wav.scp", out_wav)
    write_codes(
        out / "codes",
        all_codes,
        codec.codebook_size,
        codec.frame_rate,
        codec.sample_rate,
        codec.codebooks_per_stream,
    )
    with open(out / "bitrate", "w") as f:
        f.write(f"{codec.bitrate(n_q)}\n")
    log.info("wrote %d waveforms to %s and codes to %s", len(out_wav), wav_dir, out / "codes.scp")
    return 0


def _read(spec: str, where: str, codec) -> np.ndarray:
    """Mono float32 (T,) at the codec's rate.

    Raises:
        AudioError: unreadable audio or another sample rate.
    """
    wav, fs = read_audio(spec, where)
    if fs != codec.sample_rate:
        raise AudioError(f"{spec} ({where}) is {fs} Hz; the codec expects {codec.sample_rate} Hz")
    return to_mono(wav)


if __name__ == "__main__":
    sys.exit(run(main))
