"""VCTK (0.92 and 0.80) through lhotse into Kaldi data dirs: quirks, split, bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import prepare_corpus
from codectk.corpora.common import CorpusError
from codectk.corpora.vctk import download_vctk, prepare_vctk, split_vctk
from codectk.io.datadir import read_scp, validate_data_dir
from test.corpora.builders import build_vctk


@pytest.fixture(scope="module")
def vctk092(tmp_path_factory) -> Path:
    """Read-only VCTK 0.92 fixture (8 speakers x 2 utterances x 2 microphones)."""
    return build_vctk(tmp_path_factory.mktemp("vctk"))


def test_092_mic1_and_split(vctk092: Path, tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING)
    counts = prepare_vctk(vctk092.parent, tmp_path / "data", nj=2)
    assert counts == {"all": 16, "test": 4, "valid": 4, "train": 8}
    d = tmp_path / "data" / "all"
    assert validate_data_dir(d, no_text=False) == []
    wav = read_scp(d / "wav.scp")
    assert wav["p225_001_mic1"] == str(vctk092 / "wav48_silence_trimmed/p225/p225_001_mic1.flac")
    text = read_scp(d / "text", allow_empty_value=True)
    assert text["p225_002_mic1"] == "Speaker two two five says one."
    assert text["p315_001_mic1"] == ""  # p315 has no text: lhotse drops it, codectk keeps it
    assert str(vctk092 / "wav48_silence_trimmed/p315/p315_001_mic1.flac") in caplog.text
    assert "p280_001_mic1" in wav  # p280 has mic1 audio
    assert read_scp(d / "utt2num_samples")["p226_001_mic1"] == str(int(1.2 * 48000))
    assert read_scp(d / "spk2gender")["p376"] == "m"
    spk = {n: set(read_scp(tmp_path / "data" / n / "utt2spk").values()) for n in counts}
    assert spk["test"] == {"p361", "p376"} and spk["valid"] == {"p339", "p360"}
    assert spk["train"] == {"p225", "p226", "p280", "p315"}
    for n in ("train", "valid", "test"):
        assert validate_data_dir(tmp_path / "data" / n) == []


def test_092_mic2(vctk092: Path, tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING)
    counts = prepare_vctk(vctk092, tmp_path / "data", mic="mic2", split=False)
    assert counts == {"all": 14}  # p280 has no mic2 audio
    assert str(vctk092 / "txt/p280/p280_001.txt") in caplog.text
    assert "p315_002_mic2" in read_scp(tmp_path / "data" / "all" / "wav.scp")


def test_080_layout(tmp_path: Path):
    corpus = build_vctk(tmp_path / "corpora", release="0.80")
    counts = prepare_vctk(corpus.parent, tmp_path / "data", mic="mic2")  # no mic in 0.80
    assert counts == {"all": 16, "test": 4, "valid": 4, "train": 8}
    d = tmp_path / "data" / "all"
    assert read_scp(d / "wav.scp")["p226_002"] == str(corpus / "wav48/p226/p226_002.wav")
    assert read_scp(d / "spk2gender")["p225"] == "f"  # '225' in 0.80's speaker-info
    assert (
        read_scp(d / "text", allow_empty_value=True)["p361_001"]
        == "Speaker three six one says zero."
    )


def test_bad_input_is_named_and_nothing_else_is_lost(vctk092: Path, tmp_path: Path, caplog):
    corpus = tmp_path / "VCTK-Corpus-0.92"
    shutil.copytree(vctk092, corpus)
    audio = corpus / "wav48_silence_trimmed"
    corrupt = audio / "p225" / "p225_002_mic1.flac"
    corrupt.write_bytes(b"not a flac file")
    (audio / "p226" / "p226_001_mic1.flac").unlink()  # its transcript would stop lhotse
    low = audio / "p339" / "p339_001_mic1.flac"
    sf.write(low, np.full(16000, 0.01, "float32"), 16000)
    stereo = audio / "p339" / "p339_002_mic1.flac"
    sf.write(stereo, np.full((48000, 2), 0.01, "float32"), 48000)
    info = corpus / "speaker-info.txt"
    lines = info.read_text().splitlines()
    lines[2] = "p226  twenty-one  M"  # malformed
    info.write_text("\n".join(lines) + "\n")

    caplog.set_level(logging.WARNING)
    counts = prepare_vctk(corpus, tmp_path / "data")
    log = caplog.text
    assert f"{corrupt}: unreadable audio" in log
    assert str(corpus / "txt" / "p226" / "p226_001.txt") in log
    assert f"{low} (16000 Hz)" in log and f"{stereo} (2 channels)" in log
    assert f"{info}:3: not 'ID AGE GENDER ACCENTS [REGION]'" in log
    assert "speakers in" in log and "have no gender: p226" in log
    assert counts["all"] == 14  # 16 - corrupt - deleted
    d = tmp_path / "data" / "all"
    assert validate_data_dir(d) == []
    assert "p226" not in read_scp(d / "spk2gender")
    assert (
        read_scp(d / "text", allow_empty_value=True)["p339_002_mic1"]
        == "Speaker three three nine says one."
    )


def test_split_needs_held_out_speakers(vctk092: Path, tmp_path: Path):
    prepare_vctk(vctk092, tmp_path / "data", split=False)
    with pytest.raises(CorpusError, match="no test speaker"):
        split_vctk(tmp_path / "data" / "all", tmp_path / "data", test_speakers=["p999"])
    counts = split_vctk(tmp_path / "data" / "all", tmp_path / "s", ["p225"], ["p226", "p361"])
    assert counts == {"test": 2, "valid": 4, "train": 10}


def test_corpus_on_disk_is_never_downloaded(vctk092: Path, tmp_path: Path, monkeypatch):
    from lhotse.recipes import vctk as lhotse_vctk

    def no_network(*args, **kwargs):
        raise AssertionError("lhotse's download was called although the corpus is on disk")

    monkeypatch.setattr(lhotse_vctk, "download_vctk", no_network)
    for corpus_dir in (vctk092, vctk092.parent):
        rc = prepare_corpus.main(
            ["vctk", "--corpus_dir", str(corpus_dir), "--out_dir", str(tmp_path / "data")]
            + ["--download", "true", "--split", "false"]
        )
        assert rc == 0


def test_missing_corpus_is_downloaded_once(vctk092: Path, tmp_path: Path, monkeypatch):
    from lhotse.recipes import vctk as lhotse_vctk

    calls = []

    def fake_download(target_dir, use_edinburgh_vctk_url):
        # As lhotse with the 0.92 zip: the files land in target_dir, then touching
        # <target_dir>/VCTK-Corpus-0.92/.completed fails.
        calls.append(Path(target_dir))
        shutil.copytree(vctk092, target_dir, dirs_exist_ok=True)
        (Path(target_dir) / "VCTK-Corpus-0.92" / ".completed").touch()

    monkeypatch.setattr(lhotse_vctk, "download_vctk", fake_download)
    root = download_vctk(tmp_path / "downloads")
    assert root == tmp_path / "downloads" / "VCTK-Corpus-0.92"
    assert (root / ".completed").is_file() and calls == [root]
    assert download_vctk(tmp_path / "downloads") == root and len(calls) == 1
    (root / ".completed").unlink()
    (root / "VCTK-Corpus-0.92.zip").write_bytes(b"partial")  # interrupted: resume
    download_vctk(tmp_path / "downloads")
    assert len(calls) == 2
