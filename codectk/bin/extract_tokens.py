"""Stage 10: dump the codec tokens of a data directory for TTS / language-model training.

Usage::

    python -m codectk.bin.extract_tokens --model exp/codec_x --data dump/raw/train \\
        --out_dir exp/codec_x/tokens/train [--model_file valid.mel_distance.ave.pt] \\
        [--target_bandwidth 1.6] [--npy true] [--device cpu]

Writes ``codes.{ark,scp,json}``, ``tokens.txt``, ``frame_rate``, ``tokens.json`` (and
``npy/``, ``npy.scp`` with ``--npy true``); see codectk/tokens.py for the layout and
``codectk.tokens.load_tokens(dir)`` to read it back. The audio must be at the codec's
sample rate (stage 2 dumps at ``--fs``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from codectk.bin.common import (
    add_device_args,
    add_model_args,
    parser,
    run,
    set_num_threads,
    str2bool,
)
from codectk.inference import load_codec
from codectk.log import setup_logging, timed
from codectk.tokens import extract_tokens


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    add_model_args(p)
    p.add_argument("--data", required=True, help="Kaldi data dir (its wav.scp is read)")
    p.add_argument("--out_dir", required=True, help="token folder")
    p.add_argument(
        "--target_bandwidth", type=float, default=None, help="kbps (default: all codebooks)"
    )
    p.add_argument("--npy", type=str2bool, default=False, help="also write one .npy per utterance")
    add_device_args(p)
    args = p.parse_args(argv)
    setup_logging()
    set_num_threads(args.num_threads)
    wav_scp = Path(args.data) / "wav.scp"
    if not wav_scp.is_file():
        p.error(f"{wav_scp}: not found (--data must be a Kaldi data dir)")
    codec = load_codec(args.model, args.model_file, args.device)
    try:
        n_q = codec.n_quantizers_for_bandwidth(args.target_bandwidth)
    except ValueError as exc:
        p.error(str(exc))
    with timed(f"tokens of {wav_scp}"):
        meta = extract_tokens(
            codec, wav_scp, args.out_dir, n_q, args.npy, args.device, str(args.model)
        )
    logging.getLogger("codectk.bin.extract_tokens").info(
        "wrote %d utterances (%d frames, K=%d, vocabulary %d, %g Hz, %.3f kbps) to %s",
        meta["n_utts"],
        meta["n_frames"],
        meta["n_codebooks"],
        meta["vocab_size"],
        meta["frame_rate"],
        meta["bitrate_kbps"],
        args.out_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
