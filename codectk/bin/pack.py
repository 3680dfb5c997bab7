"""Stage 8: pack a trained model into one archive.

Usage::

    python -m codectk.bin.pack --exp_dir exp/codec_x --model_file valid.mel_distance.ave.pt \\
        --out exp/codec_x/packed/codec_x.zip [--scores_dir exp/codec_x/scores]

The zip holds ``config.yaml`` (resolved), ``model.pt`` (the chosen model file),
``README.md`` (model facts and every ``scores/<set>/summary.txt``) and ``meta.json``
(format, codectk version, sha256 of model.pt). ``codectk.load_codec(zip)`` reads it
in memory, never extracting to disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import zipfile
from pathlib import Path

from codectk.bin.common import parser, run
from codectk.inference import load_codec
from codectk.io.fileio import atomic_replace_from
from codectk.io.modelfile import PACK_FORMAT, PACK_VERSION
from codectk.log import setup_logging
from codectk.version import __version__


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--model_file", default="valid.mel_distance.ave.pt")
    p.add_argument("--out", required=True, help="output .zip")
    p.add_argument("--scores_dir", default=None, help="folder of <set>/summary.txt to include")
    args = p.parse_args(argv)
    setup_logging()
    exp = Path(args.exp_dir)
    model_path = (exp / args.model_file).resolve()
    codec = load_codec(exp, args.model_file)  # refuses a broken or foreign model file
    blob = model_path.read_bytes()
    config = (exp / "config.yaml").read_text()
    meta = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "codectk_version": __version__,
        "source": str(exp.name),
        "model_file": model_path.name,
        "model_sha256": hashlib.sha256(blob).hexdigest(),
    }
    readme = [
        f"# {exp.name}",
        "",
        f"Packed by codectk {__version__} from `{exp.name}/{model_path.name}`.",
        "",
        f"- codec: {type(codec).__name__}, {sum(x.numel() for x in codec.parameters()) / 1e6:.3f} M parameters",
        f"- sample rate {codec.sample_rate} Hz, hop {codec.hop_length} samples, frame rate {codec.frame_rate:g} Hz",
        f"- {codec.n_codebooks} codebooks x {codec.codebook_size} entries; bitrates (kbps): "
        + ", ".join(f"{b:g}" for b in codec.bandwidths),
        "",
        'Load with `codectk.load_codec("<this zip>")`.',
    ]
    if args.scores_dir and Path(args.scores_dir).is_dir():
        for summary in sorted(Path(args.scores_dir).glob("*/summary.txt")):
            readme += [
                "",
                f"## Scores: {summary.parent.name}",
                "",
                "```",
                summary.read_text().rstrip(),
                "```",
            ]

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("meta.json", json.dumps(meta, indent=2))
            zf.writestr("config.yaml", config)
            zf.writestr("model.pt", blob)
            zf.writestr("README.md", "\n".join(readme) + "\n")

    atomic_replace_from(write, args.out)
    load_codec(args.out)  # the archive must load back
    logging.getLogger("codectk.pack").info(
        "wrote %s (%.1f MiB)", args.out, Path(args.out).stat().st_size / 2**20
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
