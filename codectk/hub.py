"""Stage 9's Hugging Face model repository: the folder (model card, config, packed model,
score tables, plots) and its upload with ``huggingface_hub``. The command line is
``python -m codectk.bin.upload``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import yaml

from codectk.errors import CodectkError
from codectk.inference import load_codec
from codectk.io.datadir import read_scp
from codectk.io.fileio import atomic_write
from codectk.version import __version__

log = logging.getLogger("codectk.hub")
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


def write_repo_folder(
    repo_id: str,
    exp_dir: str | os.PathLike,
    packed: str | os.PathLike,
    out_dir: str | os.PathLike,
    train_data: str | os.PathLike | None = None,
    valid_data: str | os.PathLike | None = None,
    report_dir: str | os.PathLike | None = None,
    license_: str = "other",
) -> Path:
    """Write the repository folder ``out_dir`` (replacing one an earlier call wrote):
    ``README.md`` (:func:`model_card`), ``config.yaml``, the packed model,
    ``scores/<set>/summary.{txt,json}``, ``plots/*.png`` (rate-distortion plots of the
    report and training curves) and the :data:`MARKER` file.

    Args:
        repo_id (str): ``user/name`` on the Hugging Face Hub.
        exp_dir: the experiment folder (``config.yaml``, ``scores/``, ``images/``).
        packed: the stage-8 archive.
        out_dir: the repository folder to write.
        train_data, valid_data: data dirs described in the card (None: left out).
        report_dir: the report folder (``rd_*.md``, ``plots/rd_*.png``; None or missing:
            left out).
        license_ (str): license id for the card.

    Returns:
        Path: ``out_dir``.

    Raises:
        UploadError: a missing ``config.yaml`` or archive, or an ``out_dir`` holding
            files and no :data:`MARKER`.
        CheckpointError: a broken archive.
    """
    exp, packed, out = Path(exp_dir), Path(packed), Path(out_dir)
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
        name: describe_data(d) for name, d in (("train", train_data), ("valid", valid_data)) if d
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
    report = Path(report_dir) if report_dir else None
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
        repo_id,
        exp,
        packed.name,
        codec,
        config_text,
        data,
        scores,
        rd_tables,
        plots,
        license_,
    )
    with atomic_write(out / "README.md") as f:
        f.write(card)
    with atomic_write(out / MARKER) as f:
        json.dump({"repo_id": repo_id, "exp_dir": str(exp), "packed": packed.name}, f, indent=2)
    log.info("wrote %s (%d files)", out, sum(1 for x in out.rglob("*") if x.is_file()))
    return out


def push(out: Path, repo_id: str, token: str, private: bool, commit_message: str):
    """Create ``repo_id`` if needed and upload the folder ``out`` to it.

    Returns:
        huggingface_hub.CommitInfo: the commit (its ``commit_url``).

    Raises:
        Exception: whatever ``huggingface_hub`` raises (offline, network, HTTP,
            permission errors).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(out), commit_message=commit_message)
