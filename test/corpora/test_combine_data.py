"""codectk.io.datadir.combine_data, its CLI codectk.bin.combine_data and
utils/combine_data.sh: unions of data dirs (train-960)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from codectk.io.datadir import DataDirError, combine_data, read_scp, validate_data_dir, write_scp
from test.corpora.builders import REPO


def make_dir(d: Path, utts: dict[str, str], text: bool = True, genders=None) -> Path:
    """A valid data dir over ``utt -> speaker``."""
    write_scp(d / "wav.scp", {u: f"/corpus/{u}.flac" for u in utts})
    write_scp(d / "utt2spk", utts)
    spk2utt: dict[str, list[str]] = {}
    for u, s in sorted(utts.items()):
        spk2utt.setdefault(s, []).append(u)
    write_scp(d / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
    write_scp(d / "utt2num_samples", dict.fromkeys(utts, 16000))
    if text:
        write_scp(d / "text", {u: f"WORDS OF {u}" for u in utts})
    if genders:
        write_scp(d / "spk2gender", genders)
    return d


def test_union(tmp_path: Path):
    a = make_dir(tmp_path / "a", {"10-1-0": "10", "10-1-1": "10"}, genders={"10": "f"})
    b = make_dir(tmp_path / "b", {"1-2-0": "1", "11-3-0": "11"}, text=False, genders={"1": "m"})
    assert combine_data(tmp_path / "ab", [a, b]) == 4
    ab = tmp_path / "ab"
    assert validate_data_dir(ab) == []
    assert list(read_scp(ab / "wav.scp")) == ["1-2-0", "10-1-0", "10-1-1", "11-3-0"]
    text = read_scp(ab / "text", allow_empty_value=True)
    assert text["10-1-1"] == "WORDS OF 10-1-1" and text["11-3-0"] == ""
    assert read_scp(ab / "spk2gender") == {"1": "m", "10": "f"}
    assert read_scp(ab / "spk2utt")["10"] == "10-1-0 10-1-1"


def test_errors_name_the_dirs(tmp_path: Path):
    a = make_dir(tmp_path / "a", {"10-1-0": "10"}, genders={"10": "f"})
    b = make_dir(tmp_path / "b", {"10-1-0": "10"})
    with pytest.raises(DataDirError, match=f"'10-1-0' is in both {a} and {b}"):
        combine_data(tmp_path / "ab", [a, b])
    c = make_dir(tmp_path / "c", {"10-2-0": "10"}, genders={"10": "m"})
    with pytest.raises(DataDirError, match=f"{c / 'spk2gender'}: speaker '10' is 'm' here"):
        combine_data(tmp_path / "ac", [a, c])
    (b / "spk2utt").unlink()
    with pytest.raises(DataDirError, match=f"{b}: invalid source data dir"):
        combine_data(tmp_path / "x", [b])
    with pytest.raises(DataDirError, match="also a source"):
        combine_data(a, [a, c])
    assert not (tmp_path / "ab").exists() and not (tmp_path / "x").exists()


def test_shell_wrapper(tmp_path: Path):
    make_dir(tmp_path / "a", {"10-1-0": "10"})
    make_dir(tmp_path / "b", {"11-1-0": "11"})
    env = dict(os.environ, PYTHON=sys.executable)
    tool = str(REPO / "utils" / "combine_data.sh")

    def run(*args):
        return subprocess.run([tool, *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    r = run("data/ab", "a", "b")
    assert r.returncode == 0, r.stderr
    assert len(read_scp(tmp_path / "data" / "ab" / "wav.scp")) == 2
    assert run("data/ab").returncode == 2
    assert run("--bogus", "x", "y").returncode == 2
    r = run("data/aa", "a", "a")
    assert r.returncode == 1 and "'10-1-0' is in both a and a" in r.stderr
