"""Stage 6: encode and decode a data dir with a trained codec.

Usage (one job of a ``run.pl JOB=1:N`` array)::

    python -m codectk.bin.decode --model exp/codec_x --model_file valid.mel_distance.ave.pt \\
        --in_scp log/keys.3.scp --out_dir exp/codec_x/decode_test/log/output.3 \\
        --wav_dir exp/codec_x/decode_test/wav [--target_bandwidth 1.6] [--device cpu]

Writes ``<wav_dir>/<utt>.wav`` (at the codec's rate, trimmed to the input length) and
``<out_dir>/{wav.scp,codes.ark,codes.scp,codes.json}``. Input audio at another rate
is an error (stage 2 dumps at ``--fs``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from codectk.audio import AudioError, read_audio, to_mono, write_audio
from codectk.bin.common import parser, run, setup_logging, timed
from codectk.codes import write_codes
from codectk.config import load_yaml
from codectk.datadir import read_scp, write_scp
from codectk.inference import load_codec


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="experiment folder, model file or packed .zip")
    p.add_argument("--model_file", default=None, help="model file inside the experiment folder")
    p.add_argument("--in_scp", required=True, help="wav.scp to decode")
    p.add_argument("--out_dir", required=True, help="folder for this job's wav.scp and codes")
    p.add_argument("--wav_dir", required=True, help="folder for decoded WAV files")
    p.add_argument(
        "--target_bandwidth", type=float, default=None, help="kbps (default: all codebooks)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--num_threads", type=int, default=1, help="torch CPU threads per job (0: torch default)"
    )
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
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    codec = load_codec(args.model, args.model_file, args.device)
    n_q = codec.n_quantizers_for_bandwidth(args.target_bandwidth)
    log.info(
        "codec %s: %d Hz, %d codebooks -> %.3f kbps",
        type(codec).__name__,
        codec.sample_rate,
        n_q,
        codec.bitrate(n_q),
    )
    table = read_scp(args.in_scp)
    wav_dir = Path(args.wav_dir).resolve()
    out_wav, all_codes = {}, {}
    with timed(f"decoding {len(table)} utterances"), torch.inference_mode():
        for i, (utt, spec) in enumerate(table.items(), 1):
            where = f"{args.in_scp}:{i}"
            wav, fs = read_audio(spec, where)
            if fs != codec.sample_rate:
                raise AudioError(
                    f"{spec} ({where}) is {fs} Hz; the codec expects {codec.sample_rate} Hz"
                )
            x = torch.from_numpy(to_mono(wav))[None, None, :].to(args.device)  # (T,) -> (1, 1, T)
            codes = codec.encode(x, n_q)  # (1, K, F)
            y = codec.decode(codes)[..., : x.shape[-1]]  # (1, 1, T)
            dst = wav_dir / f"{utt}.wav"
            write_audio(dst, y[0, 0].float().cpu().numpy(), codec.sample_rate)
            out_wav[utt] = str(dst)
            all_codes[utt] = codes[0].cpu().numpy().astype(np.int64)
    out = Path(args.out_dir)
    write_scp(out / "wav.scp", out_wav)
    write_codes(out / "codes", all_codes, codec.codebook_size, codec.frame_rate, codec.sample_rate)
    with open(out / "bitrate", "w") as f:
        f.write(f"{codec.bitrate(n_q)}\n")
    log.info("wrote %d waveforms to %s and codes to %s", len(out_wav), wav_dir, out / "codes.scp")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
