"""LibriTTS / LibriTTS-R through lhotse into Kaldi data dirs: ids, text, bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import prepare_corpus
from codectk.corpora.common import CorpusError
from codectk.corpora.libritts import prepare_libritts
from codectk.io.datadir import read_scp, validate_data_dir
from test.corpora.builders import build_libritts

PARTS = {"train-clean-100": ["200", "2007", "39"], "dev-clean": ["40"]}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_libritts(tmp_path / "corpora", PARTS)


def test_clean_parts(corpus: Path, tmp_path: Path):
    assert prepare_libritts(corpus.parent, tmp_path / "data") == {
        "train-clean-100": 6,
        "dev-clean": 2,
    }
    d = tmp_path / "data" / "train-clean-100"
    assert validate_data_dir(d, no_text=False) == []
    utt2spk = read_scp(d / "utt2spk")
    # '_' -> '-': speaker 200's utterances sort before 2007's, as the speaker ids do.
    assert list(utt2spk) == [
        "200-124139-000003-000000",
        "200-124139-000004-000001",
        "2007-132570-000003-000000",
        "2007-132570-000004-000001",
        "39-121914-000003-000000",
        "39-121914-000004-000001",
    ]
    assert read_scp(d / "wav.scp")["2007-132570-000004-000001"] == str(
        corpus / "train-clean-100" / "2007" / "132570" / "2007_132570_000004_000001.wav"
    )
    assert read_scp(d / "text")["39-121914-000003-000000"] == "Speaker three nine says zero."
    assert read_scp(d / "utt2num_samples")["39-121914-000003-000000"] == "28800"  # 1.2 s, 24 kHz
    assert read_scp(d / "spk2gender") == {"200": "f", "2007": "f", "39": "f"}


def test_bad_input_is_named_and_nothing_else_is_lost(corpus: Path, tmp_path: Path, caplog):
    part = corpus / "train-clean-100"
    (part / "200" / "124139" / "200_124139.trans.tsv").unlink()  # no transcript table
    (part / "2007" / "132570" / "2007_132570.book.tsv").unlink()  # lhotse would stop
    ch = part / "39" / "121914"
    corrupt = ch / "39_121914_000009_000000.wav"
    corrupt.write_bytes(b"RIFF\0\0\0\0WAVE")
    low = ch / "39_121914_000010_000000.wav"
    sf.write(low, np.full(16000, 0.01, "float32"), 16000)
    stereo = ch / "39_121914_000011_000000.wav"
    sf.write(stereo, np.full((24000, 2), 0.01, "float32"), 24000)
    (ch / "._39_121914_000003_000000.wav").write_bytes(b"macOS junk")
    with open(ch / "39_121914.trans.tsv", "a") as f:
        for stem in (
            "39_121914_000009_000000",
            "39_121914_000010_000000",
            "39_121914_000011_000000",
        ):
            f.write(f"{stem}\tMade up!\tMade up.\n")
    (corpus / "test-other").mkdir()

    caplog.set_level(logging.WARNING)
    written = prepare_libritts(corpus, tmp_path / "data")
    log = caplog.text
    assert f"{corrupt}: unreadable audio" in log
    assert f"{low} (16000 Hz)" in log and f"{stereo} (2 channels)" in log
    assert f"{part / '2007' / '132570' / '2007_132570.book.tsv'} is missing" in log
    assert f"{corpus / 'test-other'}: no audio" in log
    assert written == {"train-clean-100": 8, "dev-clean": 2}
    d = tmp_path / "data" / "train-clean-100"
    assert validate_data_dir(d, no_text=False) == []
    text = read_scp(d / "text")
    # Chapters lhotse could not read keep their text, from the .normalized.txt files.
    assert text["200-124139-000003-000000"] == "Speaker two zero zero says zero."
    assert text["2007-132570-000004-000001"] == "Speaker two zero zero seven says one."
    assert text["39-121914-000011-000000"] == "Made up."
    assert "39-121914-000009-000000" not in text


def test_malformed_transcript_line_names_file_and_line(corpus: Path, tmp_path: Path, caplog):
    trans = corpus / "dev-clean" / "40" / "121026" / "40_121026.trans.tsv"
    trans.write_text(trans.read_text() + "40_121026_000099_000000 no tabs here\n")
    caplog.set_level(logging.WARNING)
    assert prepare_libritts(corpus, tmp_path / "data", ["dev-clean"]) == {"dev-clean": 2}
    assert f"{trans}:3: not <id> TAB <original> TAB <normalized>" in caplog.text


def test_libritts_r_and_ambiguous_root(corpus: Path, tmp_path: Path):
    r = build_libritts(tmp_path / "r", {"dev-clean": ["40"]}, name="LibriTTS_R")
    assert prepare_libritts(r.parent, tmp_path / "data") == {"dev-clean": 2}
    shutil.copytree(r, corpus.parent / "LibriTTS_R")
    with pytest.raises(CorpusError, match="holds both LibriTTS and LibriTTS_R"):
        prepare_libritts(corpus.parent, tmp_path / "data")
    out = tmp_path / "data_r"
    assert prepare_libritts(corpus.parent, out, variant="libritts_r") == {"dev-clean": 2}
    with pytest.raises(CorpusError, match="no LibriTTS_R part found"):
        prepare_libritts(r.parent, tmp_path / "data", ["test-clean"])


def test_messages_name_the_corpus_whatever_its_folder(corpus: Path, tmp_path: Path):
    renamed = corpus.rename(corpus.parent / "tts")  # the parts in a folder of another name
    with pytest.raises(CorpusError, match=f"{renamed}: no LibriTTS part found"):
        prepare_libritts(renamed, tmp_path / "data", ["test-clean"])


def test_corpus_on_disk_is_never_downloaded(corpus: Path, tmp_path: Path, monkeypatch):
    from lhotse.recipes import libritts as lhotse_libritts

    def no_network(*args, **kwargs):
        raise AssertionError("lhotse's download was called although the corpus is on disk")

    monkeypatch.setattr(lhotse_libritts, "download_libritts", no_network)
    rc = prepare_corpus.main(
        ["libritts", "--corpus_dir", str(corpus.parent), "--out_dir", str(tmp_path / "data")]
        + ["--sets", "dev-clean", "--download", "true"]
    )
    assert rc == 0 and (tmp_path / "data" / "dev-clean" / "wav.scp").is_file()
    calls = []
    monkeypatch.setattr(lhotse_libritts, "download_libritts", lambda *a, **k: calls.append(k))
    rc = prepare_corpus.main(
        ["libritts", "--corpus_dir", str(corpus.parent), "--out_dir", str(tmp_path / "data")]
        + ["--sets", "dev-clean", "test-clean", "--download", "true"]
    )
    assert calls == [{"use_librittsr": False, "dataset_parts": ["test-clean"]}]
    assert rc == 1  # the fake download brought nothing: test-clean is not written


def test_lhotse_exclusions_are_kept(corpus: Path, tmp_path: Path):
    """lhotse leaves out the corrupted LibriTTS-R file and macOS ``._`` files; so does the
    wrapper, which would otherwise add them back as audio without transcript."""
    ch = corpus / "dev-clean" / "1092" / "134562"
    ch.mkdir(parents=True)
    src = next((corpus / "dev-clean" / "40").glob("*/*.wav"))
    lines = []
    for stem in ("1092_134562_000013_000004", "1092_134562_000013_000005"):
        shutil.copy(src, ch / f"{stem}.wav")
        lines.append(f"{stem}\tMade up!\tMade up.\n")
    shutil.copy(src, ch / "._1092_134562_000013_000005.wav")
    (ch / "1092_134562.trans.tsv").write_text("".join(lines))
    (ch / "1092_134562.book.tsv").write_text("".join(f"{x.split()[0]}\t20.0\n" for x in lines))
    prepare_libritts(corpus, tmp_path / "data", ["dev-clean"])
    utts = read_scp(tmp_path / "data" / "dev-clean" / "wav.scp")
    assert "1092-134562-000013-000005" in utts
    assert "1092-134562-000013-000004" not in utts and len(utts) == 3
