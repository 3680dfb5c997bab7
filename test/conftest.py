"""Shared fixtures: the bundled real speech and small data dirs built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from codectk.bin import dump_wav
from codectk.io.datadir import read_scp, subset_data_dir

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "egs" / "mini_librispeech" / "codec1" / "corpus"


def bundled_flacs() -> list[Path]:
    """The bundled LibriSpeech FLAC files (16 kHz mono), sorted."""
    files = sorted(CORPUS.glob("LibriSpeech/train-clean-100/*/*/*.flac"))
    assert files, f"bundled corpus missing under {CORPUS}"
    return files


@pytest.fixture
def flacs() -> list[Path]:
    return bundled_flacs()


@pytest.fixture
def small_datadir(tmp_path: Path) -> Path:
    """A valid Kaldi data dir over 4 bundled utterances (wav.scp, utt2spk, spk2utt)."""
    from codectk.io.datadir import utt2spk_to_spk2utt, write_scp

    d = tmp_path / "data" / "small"
    files = bundled_flacs()[:4]
    wav = {f.stem: str(f) for f in files}
    utt2spk = {f.stem: f.stem.split("-")[0] for f in files}
    write_scp(d / "wav.scp", wav)
    write_scp(d / "utt2spk", utt2spk)
    write_scp(d / "spk2utt", {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()})
    return d


@pytest.fixture(scope="session")
def dumped(tmp_path_factory) -> dict[str, Path]:
    """dump/raw/{train,valid} from 6 + 2 bundled utterances at 16 kHz."""
    root = tmp_path_factory.mktemp("dump")
    files = bundled_flacs()[:8]
    src = root / "src"
    src.mkdir()
    (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in files))
    (src / "utt2spk").write_text("".join(f"{f.stem} {f.stem.split('-')[0]}\n" for f in files))
    dump_wav.main(
        [
            "--fs",
            "16000",
            "--in_scp",
            str(src / "wav.scp"),
            "--out_wav_dir",
            str(root / "data"),
            "--out_dir",
            str(src),
        ]
    )
    utts = list(read_scp(src / "wav.scp"))
    out = {}
    for name, sub in (("train", utts[:6]), ("valid", utts[6:])):
        subset_data_dir(src, root / name, sub)
        (root / name / "fs").write_text("16000\n")
        out[name] = root / name
    return out
