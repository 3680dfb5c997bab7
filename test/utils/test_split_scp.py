"""utils/split_scp.pl: split a table into contiguous, nearly equal parts."""

from __future__ import annotations

import pytest


def write_lines(path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def read_lines(path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture
def scp10(tmp_path):
    lines = [f"utt{i:02d} /data/{i}.wav" for i in range(10)]
    write_lines(tmp_path / "wav.scp", lines)
    return lines


def test_contiguous_nearly_equal_parts(tmp_path, run_tool, scp10):
    r = run_tool("split_scp.pl", "wav.scp", "a.scp", "b.scp", "c.scp")
    assert r.returncode == 0, r.stderr
    parts = [read_lines(tmp_path / f"{p}.scp") for p in "abc"]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert parts[0] + parts[1] + parts[2] == scp10


def test_as_many_parts_as_lines(tmp_path, run_tool, scp10):
    outs = [f"o{i}" for i in range(10)]
    assert run_tool("split_scp.pl", "wav.scp", *outs).returncode == 0
    assert [read_lines(tmp_path / o) for o in outs] == [[line] for line in scp10]


def test_more_parts_than_lines_is_an_error(tmp_path, run_tool, scp10):
    outs = [f"o{i}" for i in range(11)]
    r = run_tool("split_scp.pl", "wav.scp", *outs)
    assert r.returncode == 1
    assert "only 10 lines" in r.stderr and "11 parts" in r.stderr
    assert not (tmp_path / "o0").exists()


def test_missing_input_and_usage(run_tool):
    assert run_tool("split_scp.pl", "nope.scp", "a", "b").returncode == 1
    assert run_tool("split_scp.pl", "only-input.scp").returncode == 2
    assert run_tool("split_scp.pl", "--bogus", "in", "a").returncode == 2


def test_job_form_prints_one_part(run_tool, scp10):
    r = run_tool("split_scp.pl", "-j", "3", "1", "wav.scp")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == scp10[4:7]
    assert run_tool("split_scp.pl", "-j", "3", "3", "wav.scp").returncode == 2


UTT2SPK = [("A", 3), ("B", 1), ("C", 4), ("D", 2)]


@pytest.fixture
def spk_data(tmp_path):
    def make(counts):
        utts = [(f"{spk}-{i}", spk) for spk, n in counts for i in range(n)]
        write_lines(tmp_path / "utt2spk", [f"{u} {s}" for u, s in utts])
        write_lines(tmp_path / "wav.scp", [f"{u} /{u}.wav" for u, _ in utts])
        return utts

    return make


def speakers_of(path) -> list[str]:
    return [line.split("-")[0] for line in read_lines(path)]


@pytest.mark.parametrize("nparts", [2, 3, 4])
def test_utt2spk_keeps_speakers_together(tmp_path, run_tool, spk_data, nparts):
    utts = spk_data(UTT2SPK)
    outs = [f"p{i}" for i in range(nparts)]
    r = run_tool("split_scp.pl", "--utt2spk=utt2spk", "wav.scp", *outs)
    assert r.returncode == 0, r.stderr
    parts = [speakers_of(tmp_path / o) for o in outs]
    assert all(parts), parts  # no empty part
    owners = {}
    for i, spks in enumerate(parts):
        for spk in spks:
            assert owners.setdefault(spk, i) == i, f"speaker {spk} split: {parts}"
    lines = [line for o in outs for line in read_lines(tmp_path / o)]
    assert lines == [f"{u} /{u}.wav" for u, _ in utts]


def test_utt2spk_rebalances_by_line_count(tmp_path, run_tool, spk_data):
    # Dealt by speaker count: [A B] [C D] = 7 + 2 lines; moving B gives 6 + 3.
    spk_data([("A", 6), ("B", 1), ("C", 1), ("D", 1)])
    r = run_tool("split_scp.pl", "--utt2spk", "utt2spk", "wav.scp", "p0", "p1")
    assert r.returncode == 0, r.stderr
    assert speakers_of(tmp_path / "p0") == ["A"] * 6
    assert speakers_of(tmp_path / "p1") == ["B", "C", "D"]


def test_utt2spk_more_parts_than_speakers_is_an_error(run_tool, spk_data):
    spk_data(UTT2SPK)
    r = run_tool("split_scp.pl", "--utt2spk=utt2spk", "wav.scp", *[f"p{i}" for i in range(5)])
    assert r.returncode == 1
    assert "only 4 speakers" in r.stderr


def test_utt2spk_unknown_utterance_is_an_error(tmp_path, run_tool, spk_data):
    spk_data(UTT2SPK)
    with open(tmp_path / "wav.scp", "a") as f:
        f.write("E-0 /E-0.wav\n")
    r = run_tool("split_scp.pl", "--utt2spk=utt2spk", "wav.scp", "p0", "p1")
    assert r.returncode == 1
    assert "wav.scp:11" in r.stderr and "E-0" in r.stderr
