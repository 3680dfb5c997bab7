"""Shared fixtures: the bundled real speech and small data dirs built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    from codectk.datadir import utt2spk_to_spk2utt, write_scp

    d = tmp_path / "data" / "small"
    files = bundled_flacs()[:4]
    wav = {f.stem: str(f) for f in files}
    utt2spk = {f.stem: f.stem.split("-")[0] for f in files}
    write_scp(d / "wav.scp", wav)
    write_scp(d / "utt2spk", utt2spk)
    write_scp(d / "spk2utt", {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()})
    return d
