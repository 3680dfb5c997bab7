"""Stage 9: prepare a Hugging Face model repository folder and upload it.

Usage::

    python -m codectk.bin.upload --exp_dir exp/codec_x --packed exp/codec_x/packed/codec_x.zip \\
        --repo_id user/codec_x --out_dir exp/codec_x/hf_repo \\
        [--train_data dump/raw/train --valid_data dump/raw/valid] \\
        [--report_dir exp/codec_x/report] [--license cc-by-4.0] [--private false]

Writes ``out_dir``: ``README.md`` (model card: YAML front matter, model facts, how to
load it, training data from the data dirs, the config, score tables, plots),
``config.yaml``, the packed model, ``scores/<set>/summary.{txt,json}``, ``plots/*.png``
(rate-distortion plots of the report and training curves). Then uploads the folder
with ``huggingface_hub`` when the environment holds a token (``HF_TOKEN``).

Exit status: 0 when the folder is written and uploaded, and also when no token is
set (the folder is written, a message says how to upload it later: nothing was asked
that could not be done); 3 when a token is set but the upload fails (offline,
``HF_HUB_OFFLINE=1``, network or permission error; the folder is kept); 1 on bad
input (a missing experiment or packed model).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import yaml

from codectk.bin.common import parser, run, str2bool
from codectk.errors import CodectkError
from codectk.inference import load_codec
from codectk.io.datadir import read_scp
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging
from codectk.version import __version__

log = logging.getLogger("codectk.bin.upload")
EXIT_UPLOAD_FAILED = 3
MARKER = "codectk_upload.json"  # marks a folder stage 9 may replace


class UploadError(CodectkError, ValueError):
    """Missing inputs for stage 9; the message names them."""


def describe_data(data_dir: str | os.PathLike) -> dict:
    """Utterances, speakers and hours of a Kaldi data dir (hours from
    ``utt2num_samples`` and ``fs`` when present)."""
    d = Path(data_dir)
    wav = read_scp(d / "wav.scp")
    info = {"path": str(d), "utterances": len(wav), "speakers": None, "hours": None}
    if (d / "spk2utt").is_file():
        info["speakers"] = len(read_scp(d / "spk2utt"))
    if (d / "utt2num_samples").is_file() and (d / "fs").is_file():
        fs = int((d / "fs").read_text().split()[0])
        samples = sum(int(v) for v in read_scp(d / "utt2num_samples").values())
        info["hours"] = samples / fs / 3600
    return info


def model_card(
    repo_id: str,
    exp: Path,
    packed_name: str,
    codec,
    config_text: str,
    data: dict[str, dict],
    scores: dict[str, str],
    rd_tables: dict[str, str],
    plots: list[str],
    license_: str,
) -> str:
    """The README.md of the repository (Hugging Face model card)."""
    family = yaml.safe_load(config_text).get("codec", "codec")
    front = {
        "library_name": "codectk",
        "license": license_,
        "tags": ["audio", "speech", "neural-audio-codec", "audio-tokenizer", "codectk", family],
        "pipeline_tag": "audio-to-audio",
    }
    n_params = sum(x.numel() for x in codec.parameters())
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {repo_id.split('/')[-1]}",
        "",
        f"A `{family}` neural speech codec trained with codectk "
        f"{__version__} (experiment `{exp.name}`).",
        "",
        f"- {n_params / 1e6:.3f} M parameters; sample rate {codec.sample_rate} Hz; hop "
        f"{codec.hop_length} samples ({codec.frame_rate:g} frames/s)",
        f"- {codec.n_codebooks} codebooks x {codec.codebook_size} entries; bitrates (kbps): "
        + ", ".join(f"{b:g}" for b in codec.bandwidths),
        "",
        "## Use",
        "",
        "```python",
        "import codectk, huggingface_hub, soundfile as sf, torch",
        f'path = huggingface_hub.hf_hub_download("{repo_id}", "{packed_name}")',
        "codec = codectk.load_codec(path)",
        f'wav, fs = sf.read("speech.wav", dtype="float32")  # mono, {codec.sample_rate} Hz',
        "codes = codec.encode(torch.from_numpy(wav)[None, None])  # (1, K, F)",
        "wav_hat = codec.decode(codes)                            # (1, 1, T)",
        "```",
        "",
        "## Training data",
        "",
    ]
    if data:
        lines += ["| set | data dir | utterances | speakers | hours |", "|---|---|---:|---:|---:|"]
        for name, info in data.items():
            hours = "-" if info["hours"] is None else f"{info['hours']:.2f}"
            spk = "-" if info["speakers"] is None else str(info["speakers"])
            lines.append(f"| {name} | `{info['path']}` | {info['utterances']} | {spk} | {hours} |")
    else:
        lines.append("Not described (stage 9 was run without `--train_data`).")
    lines += ["", "## Configuration", "", "```yaml", config_text.rstrip(), "```"]
    if rd_tables or scores:
        lines += ["", "## Scores", ""]
        for set_name, table in rd_tables.items():
            lines += [
                f"Rate-distortion on `{set_name}` (mean ± 95% CI over utterances):",
                "",
                table.rstrip(),
                "",
            ]
        for set_name, text in scores.items():
            lines += [f"### {set_name}", "", "```", text.rstrip(), "```", ""]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--packed", required=True, help="stage-8 archive")
    p.add_argument("--repo_id", required=True, help="user/name on the Hugging Face Hub")
    p.add_argument("--out_dir", required=True, help="repository folder to write")
    p.add_argument("--train_data", default=None, help="training data dir (described in the card)")
    p.add_argument("--valid_data", default=None, help="validation data dir")
    p.add_argument("--report_dir", default=None, help="report folder (codectk.bin.report)")
    p.add_argument("--license", default="other", help="license id for the card (default: other)")
    p.add_argument("--private", type=str2bool, default=False, help="create a private repository")
    args = p.parse_args(argv)
    setup_logging()
    if "/" not in args.repo_id:
        p.error(f"--repo_id {args.repo_id!r}: expected user/name")
    exp, packed, out = Path(args.exp_dir), Path(args.packed), Path(args.out_dir)
    for path in (exp / "config.yaml", packed):
        if not path.is_file():
            raise UploadError(f"{path}: not found (run stages 5 and 8 first)")
    codec = load_codec(packed)  # refuses a broken archive
    config_text = (exp / "config.yaml").read_text()
    if out.exists():  # a fresh folder: no file of an older run is uploaded
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UploadError(
                f"{out}: exists and was not written by stage 9 (no {MARKER}); not removed"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(packed, out / packed.name)
    shutil.copyfile(exp / "config.yaml", out / "config.yaml")
    data = {
        name: describe_data(d)
        for name, d in (("train", args.train_data), ("valid", args.valid_data))
        if d
    }
    scores = {}
    for summary in sorted((exp / "scores").glob("*/summary.txt")):
        set_name = summary.parent.name
        (out / "scores" / set_name).mkdir(parents=True)
        for f in ("summary.txt", "summary.json"):
            if (summary.parent / f).is_file():
                shutil.copyfile(summary.parent / f, out / "scores" / set_name / f)
        scores[set_name] = summary.read_text()
    rd_tables, plots = {}, []
    report = Path(args.report_dir) if args.report_dir else None
    if report is not None and report.is_dir():
        for md in sorted(report.glob("rd_*.md")):
            rd_tables[md.stem.removeprefix("rd_")] = md.read_text()
        pngs = sorted((report / "plots").glob("rd_*.png"))
    else:
        pngs = []
    pngs += sorted((exp / "images").glob("*.png"))
    for png in pngs:
        (out / "plots").mkdir(exist_ok=True)
        shutil.copyfile(png, out / "plots" / png.name)
        plots.append(f"plots/{png.name}")
    card = model_card(
        args.repo_id,
        exp,
        packed.name,
        codec,
        config_text,
        data,
        scores,
        rd_tables,
        plots,
        args.license,
    )
    with atomic_write(out / "README.md") as f:
        f.write(card)
    with atomic_write(out / MARKER) as f:
        json.dump(
            {"repo_id": args.repo_id, "exp_dir": str(exp), "packed": packed.name}, f, indent=2
        )
    log.info("wrote %s (%d files)", out, sum(1 for x in out.rglob("*") if x.is_file()))

    token = os.environ.get("HF_TOKEN")
    if not token:
        log.info(
            "not uploaded: HF_TOKEN is not set. The repository folder is ready: %s. Upload it "
            "with HF_TOKEN=... and this stage again, or `hf upload %s %s`",
            out,
            args.repo_id,
            out,
        )
        return 0
    try:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        info = api.upload_folder(
            repo_id=args.repo_id,
            folder_path=str(out),
            commit_message=f"codectk {__version__}: {exp.name}",
        )
    except Exception as exc:  # offline, network, HTTP and permission errors alike
        log.error(
            "upload to %s failed: %s: %s. The folder is kept at %s; run stage 9 again when "
            "the network (or the token) is fixed",
            args.repo_id,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            out,
        )
        return EXIT_UPLOAD_FAILED
    log.info(
        "uploaded %s to https://huggingface.co/%s (%s)",
        out,
        args.repo_id,
        getattr(info, "commit_url", info),
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
