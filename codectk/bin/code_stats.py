"""Code statistics of a trained AudioDec encoder (AudioDec's ``codecStatistic.py``).

Usage::

    python -m codectk.bin.code_stats --model exp/codec_symAD_16k_tiny \\
        --data dump/raw/train --out exp/codec_symAD_16k_tiny/code_stats.npy

Runs the encoder, projector and quantizer (eval mode, all codebooks) of a ``symad`` or
``audiodec`` model over every utterance of a data dir and writes the global
per-dimension mean and standard deviation (population, as scikit-learn's
``StandardScaler``; a zero deviation becomes 1) of the quantised latents z_q, shape
(D,) each: ``.npy`` holds the float32 array (2, D) (row 0 mean, row 1 scale, AudioDec's
layout), ``.json`` the lists ``mean`` and ``scale`` with the frame and utterance counts.
The AD vocoder reads either (``codec_conf.stats``).
"""

from __future__ import annotations

import io
import json
import logging
import sys

import numpy as np
import torch

from codectk.bin.common import add_model_args, add_num_threads_arg, parser, run, set_num_threads
from codectk.errors import CodectkError
from codectk.inference import load_codec
from codectk.io.audio import AudioError, read_audio, to_mono
from codectk.io.datadir import read_scp
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging, timed
from codectk.models.audiodec import AudioDecAnalysis


def code_statistics(codec: AudioDecAnalysis, wavs) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and standard deviation of the quantised latents over an iterable of mono
    waveforms (float32 numpy, at ``codec.sample_rate``).

    Returns:
        tuple[np.ndarray, np.ndarray, int]: mean (D,), scale (D,) and the frame count.

    Raises:
        CodectkError: no frames at all.
    """
    total = sq = None
    n = 0
    with torch.inference_mode():
        for wav in wavs:
            x = torch.from_numpy(wav)[None, None, :]  # (T,) -> (1, 1, T)
            z_q = codec.quantizer.decode(codec.encode(x))[0].double()  # (D, F)
            s, s2 = z_q.sum(1), z_q.pow(2).sum(1)
            total, sq = (s, s2) if total is None else (total + s, sq + s2)
            n += z_q.shape[1]
    if not n:
        raise CodectkError("code statistics: no frames (empty data)")
    mean = total / n
    var = (sq / n - mean.pow(2)).clamp(min=0)
    scale = var.sqrt()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return mean.float().numpy(), scale.float().numpy(), n


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    add_model_args(p, "symAD experiment folder, model file or .zip")
    p.add_argument("--data", required=True, help="data dir whose wav.scp is analysed")
    p.add_argument("--out", required=True, help="output .npy (2, D) or .json")
    p.add_argument("--max_utts", type=int, default=0, help="use the first N utterances (0: all)")
    add_num_threads_arg(p)
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.code_stats")
    if not args.out.endswith((".npy", ".json")):
        raise CodectkError(f"--out {args.out}: must end in .npy or .json")
    set_num_threads(args.num_threads)
    codec = load_codec(args.model, args.model_file)
    if not isinstance(codec, AudioDecAnalysis):
        raise CodectkError(
            f"{args.model}: code statistics need a symad/audiodec model, got {type(codec).__name__}"
        )
    scp = f"{args.data}/wav.scp"
    table = read_scp(scp)
    items = list(table.items())[: args.max_utts or None]

    def wavs():
        for i, (_utt, spec) in enumerate(items, 1):
            wav, fs = read_audio(spec, f"{scp}:{i}")
            if fs != codec.sample_rate:
                raise AudioError(
                    f"{spec} ({scp}:{i}) is {fs} Hz; the codec expects {codec.sample_rate} Hz"
                )
            yield to_mono(wav).astype(np.float32)

    with timed(f"code statistics of {len(items)} utterances"):
        mean, scale, frames = code_statistics(codec, wavs())
    if args.out.endswith(".npy"):
        buf = io.BytesIO()
        np.save(buf, np.stack([mean, scale]).astype(np.float32), allow_pickle=False)
        with atomic_write(args.out, "wb") as f:
            f.write(buf.getvalue())
    else:
        with atomic_write(args.out) as f:
            obj = {
                "mean": mean.tolist(),
                "scale": scale.tolist(),
                "frames": frames,
                "utterances": len(items),
                "model": args.model,
            }
            json.dump(obj, f, indent=1)
    log.info(
        "code_stats: %d utterances, %d frames, D=%d, mean |mu| %.4f, mean sigma %.4f -> %s",
        len(items),
        frames,
        mean.shape[0],
        float(np.abs(mean).mean()),
        float(scale.mean()),
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
