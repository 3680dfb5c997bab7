from pathlib import Path

import pytest

from codectk.io.datadir import (
    DataDirError,
    fix_data_dir,
    is_c_sorted,
    read_scp,
    subset_data_dir,
    utt2spk_to_spk2utt,
    validate_data_dir,
    write_scp,
)


def test_read_scp_names_file_and_line(tmp_path: Path):
    p = tmp_path / "wav.scp"
    p.write_text("a x.wav\nb\n")
    with pytest.raises(DataDirError, match=r"wav.scp:2: no value"):
        read_scp(p)
    p.write_text("a x.wav\na y.wav\n")
    with pytest.raises(DataDirError, match=r"wav.scp:2: duplicated key 'a'"):
        read_scp(p)
    with pytest.raises(DataDirError, match="no such file"):
        read_scp(tmp_path / "missing")


def test_read_scp_pipe_and_crlf(tmp_path: Path):
    p = tmp_path / "wav.scp"
    p.write_bytes(b"a sox x.flac -t wav - |\r\nb y.wav\r\n")
    assert read_scp(p) == {"a": "sox x.flac -t wav - |", "b": "y.wav"}


def test_write_scp_sorts_in_c_order(tmp_path: Path):
    write_scp(tmp_path / "x", {"b": 1, "B": 2, "a-1": 3, "a": 4})
    keys = [line.split()[0] for line in (tmp_path / "x").read_text().splitlines()]
    assert keys == ["B", "a", "a-1", "b"]
    assert is_c_sorted(keys) and not is_c_sorted(["b", "a"])


def test_valid_dir(small_datadir: Path):
    assert validate_data_dir(small_datadir) == []


def test_validate_reports_problems(small_datadir: Path):
    wav = (small_datadir / "wav.scp").read_text().splitlines()
    (small_datadir / "wav.scp").write_text("\n".join(reversed(wav)) + "\n")
    (small_datadir / "utt2spk").write_text(
        "\n".join((small_datadir / "utt2spk").read_text().splitlines()[:2]) + "\n"
    )
    problems = validate_data_dir(small_datadir)
    assert any("not sorted" in p and "wav.scp:2" in p for p in problems)
    assert any("utterance ids differ" in p for p in problems)
    assert any("text" in p for p in validate_data_dir(small_datadir, no_text=False))


def test_speaker_must_prefix_utt(tmp_path: Path):
    write_scp(tmp_path / "wav.scp", {"u1": "a.wav"})
    write_scp(tmp_path / "utt2spk", {"u1": "spk"})
    write_scp(tmp_path / "spk2utt", {"spk": "u1"})
    assert any("does not prefix" in p for p in validate_data_dir(tmp_path))


def test_fix_drops_and_regenerates(small_datadir: Path):
    lines = (small_datadir / "utt2spk").read_text().splitlines()
    (small_datadir / "utt2spk").write_text("\n".join(lines[1:]) + "\n")
    result = fix_data_dir(small_datadir)
    assert result == {"kept": 3, "dropped": 1}
    assert validate_data_dir(small_datadir) == []
    assert (small_datadir / ".backup" / "dropped").read_text().split() == [lines[0].split()[0]]


def test_subset(small_datadir: Path, tmp_path: Path):
    utts = list(read_scp(small_datadir / "wav.scp"))[:2]
    assert subset_data_dir(small_datadir, tmp_path / "sub", utts) == 2
    assert list(read_scp(tmp_path / "sub" / "wav.scp")) == utts
    assert validate_data_dir(tmp_path / "sub") == []
    with pytest.raises(DataDirError, match="no such utterance"):
        subset_data_dir(small_datadir, tmp_path / "bad", ["nope"])


def test_utt2spk_to_spk2utt():
    assert utt2spk_to_spk2utt({"s1-b": "s1", "s2-a": "s2", "s1-a": "s1"}) == {
        "s1": ["s1-a", "s1-b"],
        "s2": ["s2-a"],
    }
