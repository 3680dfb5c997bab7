"""LibriSpeech through lhotse into Kaldi data dirs: clean parts, bad input, downloads."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import prepare_corpus
from codectk.corpora.common import CorpusError
from codectk.corpora.librispeech import (
    download_librispeech,
    prepare_librispeech,
    prepare_librispeech_dir,
)
from codectk.io.datadir import read_scp, validate_data_dir
from test.corpora.builders import MINI, build_librispeech

PARTS = {"train-clean-100": ["26", "2691", "103"], "dev-clean": ["39"], "test-clean": ["40"]}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A LibriSpeech with three parts, 2 utterances per speaker."""
    return build_librispeech(tmp_path / "corpora", PARTS)


def test_clean_parts(corpus: Path, tmp_path: Path):
    written = prepare_librispeech(corpus.parent, tmp_path / "data", nj=2)
    assert written == {"train-clean-100": 6, "dev-clean": 2, "test-clean": 2}
    d = tmp_path / "data" / "train-clean-100"
    assert validate_data_dir(d, no_text=False) == []
    wav = read_scp(d / "wav.scp")
    assert list(wav)[:2] == ["103-1240-0000", "103-1240-0001"]  # LC_ALL=C order
    assert wav["2691-156745-0001"] == str(
        corpus / "train-clean-100" / "2691" / "156745" / "2691-156745-0001.flac"
    )
    assert read_scp(d / "text")["26-495-0001"] == "SPEAKER TWO SIX SAYS ONE"
    assert read_scp(d / "utt2num_samples")["26-495-0000"] == "19200"  # 1.2 s at 16 kHz
    assert read_scp(d / "spk2gender") == {"103": "f", "26": "m", "2691": "f"}
    assert read_scp(d / "spk2utt")["26"] == "26-495-0000 26-495-0001"
    # The corpus folder itself works as --corpus_dir, and only the parts asked for are made.
    assert prepare_librispeech(corpus, tmp_path / "d2", ["dev-clean"]) == {"dev-clean": 2}
    assert sorted(p.name for p in (tmp_path / "d2").iterdir()) == ["dev-clean"]


def test_bad_input_is_named_and_nothing_else_is_lost(corpus: Path, tmp_path: Path, caplog):
    part = corpus / "train-clean-100"
    (part / "26" / "495" / "26-495.trans.txt").unlink()  # a chapter without transcript
    trans = part / "2691" / "156745" / "2691-156745.trans.txt"
    trans.write_text(trans.read_text().splitlines()[0] + "\n")  # a missing line
    ch = part / "103" / "1240"
    corrupt = ch / "103-1240-0002.flac"
    corrupt.write_bytes(b"fLaC" + b"\0" * 100)
    low = ch / "103-1240-0003.flac"
    sf.write(low, np.zeros(8000, "float32") + 0.01, 8000)
    stereo = ch / "103-1240-0004.flac"
    sf.write(stereo, np.full((16000, 2), 0.01, "float32"), 16000)
    with open(ch / "103-1240.trans.txt", "a") as f:
        f.write("103-1240-0002 CORRUPT\n103-1240-0003 LOW RATE\n103-1240-0004 TWO CHANNELS\n")
        f.write("103-1240-0005\n")  # a line lhotse cannot split
    (corpus / "dev-other").mkdir()  # an empty part

    caplog.set_level(logging.WARNING)
    written = prepare_librispeech(corpus, tmp_path / "data")
    log = caplog.text
    assert f"{corrupt}: unreadable audio" in log
    assert f"{low} (8000 Hz)" in log
    assert f"{stereo} (2 channels)" in log
    assert str(part / "26" / "495" / "26-495-0000.flac") in log  # kept without text
    assert str(part / "2691" / "156745" / "2691-156745-0001.flac") in log
    assert f"{corpus / 'dev-other'}: no audio" in log
    assert f"{ch / '103-1240.trans.txt'}:6: not '<id> <text>'" in log
    assert "dev-other" not in written
    d = tmp_path / "data" / "train-clean-100"
    assert written["train-clean-100"] == 8  # 6 + low rate + stereo; not the corrupt one
    assert validate_data_dir(d) == []
    text = read_scp(d / "text", allow_empty_value=True)
    assert "103-1240-0002" not in text
    assert text["103-1240-0003"] == "LOW RATE" and text["103-1240-0004"] == "TWO CHANNELS"
    assert text["26-495-0000"] == text["2691-156745-0001"] == ""
    assert text["2691-156745-0000"] == "SPEAKER TWO SIX NINE ONE SAYS ZERO"
    assert read_scp(d / "utt2num_samples")["103-1240-0003"] == "8000"


def test_part_without_any_transcript(tmp_path: Path):
    """The bundled corpus has no transcripts (lhotse alone would stop): all 70 are kept."""
    assert prepare_librispeech_dir(MINI.parent, ["train-clean-100"], tmp_path / "all") == 70
    assert not (tmp_path / "all" / "text").exists()
    assert len(read_scp(tmp_path / "all" / "spk2gender")) == 70


def test_unknown_or_absent_parts(corpus: Path, tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown LibriSpeech part\(s\) \['train-clean-99'\]"):
        prepare_librispeech(corpus, tmp_path / "data", ["train-clean-99"])
    with pytest.raises(CorpusError, match="no LibriSpeech part found"):
        prepare_librispeech(corpus, tmp_path / "data", ["test-other"])
    with pytest.raises(CorpusError, match="no LibriSpeech part found"):
        prepare_librispeech(tmp_path / "nothing", tmp_path / "data")
    renamed = corpus.rename(corpus.parent / "ls")  # the parts in a folder of another name
    with pytest.raises(ValueError, match=r"unknown LibriSpeech part\(s\) \['train-clean-99'\]"):
        prepare_librispeech(renamed, tmp_path / "data", ["train-clean-99"])
    with pytest.raises(CorpusError, match=f"{renamed}: no LibriSpeech part found"):
        prepare_librispeech(renamed, tmp_path / "data", ["test-other"])


def _no_network(*args, **kwargs):
    raise AssertionError("lhotse's download was called although the corpus is on disk")


def test_corpus_on_disk_is_never_downloaded(corpus: Path, tmp_path: Path, monkeypatch):
    from lhotse.recipes import librispeech as lhotse_librispeech

    monkeypatch.setattr(lhotse_librispeech, "download_librispeech", _no_network)
    rc = prepare_corpus.main(
        ["librispeech", "--corpus_dir", str(corpus.parent), "--out_dir", str(tmp_path / "data")]
        + ["--sets", "train-clean-100", "dev-clean", "--download", "true"]
    )
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dev-clean", "train-clean-100"]


def test_missing_or_interrupted_parts_are_downloaded(corpus: Path, monkeypatch):
    from lhotse.recipes import librispeech as lhotse_librispeech

    calls = []

    def fake_download(target_dir, dataset_parts):
        calls.append((Path(target_dir), list(dataset_parts)))
        for part in dataset_parts:
            shutil.rmtree(corpus / part, ignore_errors=True)
            shutil.copytree(corpus / "dev-clean", corpus / part)
            (corpus / part / ".completed").touch()

    monkeypatch.setattr(lhotse_librispeech, "download_librispeech", fake_download)
    (corpus.parent / "test-clean.tar.gz").write_bytes(b"partial")  # extraction interrupted
    download_librispeech(corpus.parent, ["train-clean-100", "dev-other", "test-clean"])
    assert calls == [(corpus.parent, ["dev-other", "test-clean"])]
    download_librispeech(corpus.parent, ["dev-other", "test-clean"])  # now complete
    assert len(calls) == 1


def test_unions(corpus: Path, tmp_path: Path):
    shutil.copytree(corpus / "dev-clean", corpus / "train-clean-360")
    out = tmp_path / "data"
    args = ["librispeech", "--corpus_dir", str(corpus), "--out_dir", str(out)]
    assert prepare_corpus.main([*args, "--sets", "train-clean-460", "test-clean"]) == 0
    assert len(read_scp(out / "train-clean-460" / "wav.scp")) == 6 + 2
    assert validate_data_dir(out / "train-clean-460") == []
    assert sorted(read_scp(out / "train-clean-460" / "spk2gender")) == ["103", "26", "2691", "39"]
    # train-960 needs train-other-500, which is not there: the other sets are still written.
    assert prepare_corpus.main([*args, "--sets", "train-960", "dev-clean"]) == 1
    assert not (out / "train-960").exists() and (out / "dev-clean" / "wav.scp").exists()


def test_failed_download_says_what_to_do(tmp_path: Path, monkeypatch):
    import urllib.error

    from lhotse.recipes import librispeech as lhotse_librispeech

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(lhotse_librispeech, "download_librispeech", offline)
    with pytest.raises(CorpusError, match=r"downloading LibriSpeech parts \['dev-clean'\] into"):
        download_librispeech(tmp_path / "downloads", ["dev-clean"])
