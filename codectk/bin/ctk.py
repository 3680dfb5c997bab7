"""Compress audio to ``.ctk`` files and back with a trained codec (docs/bitstream.md).

Usage::

    codectk encode IN OUT --model <exp dir | model file | packed .zip> [--bandwidth kbps]
    codectk decode IN OUT --model <same model>
    codectk info FILE.ctk [FILE.ctk ...]

IN and OUT are files, or folders (every audio file, resp. ``.ctk`` file, under IN goes
to the same relative path under OUT with the suffix ``.ctk``, resp. ``.wav``), or IN is
a ``wav.scp`` (``<utt> <path or command |>``; for decode ``<utt> <file.ctk>``) and OUT a
folder receiving ``<utt>.ctk`` / ``<utt>.wav``. Input audio at another sample rate or
with several channels is converted (soxr resampling, channel average) with a warning.
Decoding needs the model the file was encoded with; another model is refused.
Weight norm is folded at load; ``--batch_size N`` codes up to N files per forward where
that gives each file the codes / samples it gets alone (:mod:`codectk.batching`);
``--num_threads`` sets torch's CPU threads; ``--compile`` adds ``torch.compile`` (opt-in);
``--precision bf16`` runs encoder and decoder in bfloat16 (opt-in: about 2x faster on
CPUs with AVX-512 BF16 / AMX and on GPUs; lossy, model-dependent error; codebook search
in float32; the files stay decodable by a float32 decoder).
"""

from __future__ import annotations

import json
import logging
import sys

import torch

from codectk.bin.common import (
    add_device_args,
    add_model_args,
    add_precision_arg,
    parser,
    plain_text,
    run,
    set_num_threads,
)
from codectk.files import (
    AUDIO_SUFFIXES,
    UsageError,
    decode_files,
    describe,
    encode_files,
    load_model,
    plan_jobs,
)
from codectk.log import setup_logging, timed

log = logging.getLogger("codectk.ctk")


def _common_args(p, with_bandwidth: bool) -> None:
    p.add_argument("input", help="file, folder or wav.scp")
    p.add_argument("output", help="file (for a file input) or folder")
    add_model_args(p)
    if with_bandwidth:
        p.add_argument(
            "--bandwidth",
            type=float,
            default=None,
            help="target kbps, rounded down to the model's nearest bitrate (default: all "
            "codebooks)",
        )
    add_device_args(p, num_threads=0)
    p.add_argument("--batch_size", type=int, default=1, help="files per forward (default 1)")
    p.add_argument("--compile", action="store_true", help="torch.compile the codec (opt-in)")
    add_precision_arg(p)
    p.add_argument("--verbose", action="store_true", help="debug logging")


def _load(args):
    setup_logging(args.verbose)
    set_num_threads(args.num_threads)
    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be >= 1, got {args.batch_size}")
    return load_model(args.model, args.model_file, args.device, args.compile, args.precision)


def encode_main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.prog = "codectk encode"
    _common_args(p, with_bandwidth=True)
    args = p.parse_args(argv)
    jobs = plan_jobs(args.input, args.output, AUDIO_SUFFIXES, ".ctk")
    codec, identity = _load(args)
    n_q, _ = codec.resolve_bandwidth(args.bandwidth)
    log.info(
        "model %s (%s): %d codebooks, %.3f kbps",
        identity,
        type(codec).__name__,
        n_q,
        codec.bitrate(n_q),
    )
    with timed(f"encoding {len(jobs)} file(s)"), torch.inference_mode():
        total = encode_files(codec, identity, jobs, n_q, args.batch_size)
    log.info("wrote %d file(s), %d bytes", len(jobs), total)
    return 0


def decode_main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.prog = "codectk decode"
    _common_args(p, with_bandwidth=False)
    p.add_argument("--subtype", default="PCM_16", help="soundfile subtype (PCM_16, FLOAT, ...)")
    args = p.parse_args(argv)
    jobs = plan_jobs(args.input, args.output, (".ctk",), ".wav")
    codec, identity = _load(args)
    with timed(f"decoding {len(jobs)} file(s)"), torch.inference_mode():
        decode_files(codec, identity, [(s, o) for s, _, o in jobs], args.subtype, args.batch_size)
    return 0


def info_main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.prog = "codectk info"
    p.add_argument("files", nargs="+", help=".ctk files")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    setup_logging()
    for path in args.files:
        facts = describe(path)
        if args.json:
            print(json.dumps({"file": path, **facts}))
            continue
        print(path)
        for key, value in facts.items():
            print(f"  {key:18s} {round(value, 4) if isinstance(value, float) else value}")
    return 0


COMMANDS = {"encode": encode_main, "decode": decode_main, "info": info_main}


def main(argv: list[str] | None = None) -> int:
    """``python -m codectk.bin.ctk {encode,decode,info} ...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(plain_text(__doc__), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(run(main))
