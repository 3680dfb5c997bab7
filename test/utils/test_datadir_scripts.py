"""utils/validate_data_dir.sh and utils/fix_data_dir.sh (over codectk.bin.datadir)."""

from __future__ import annotations

import pytest

WAV = {
    "spkA-001": "/corpus/a1.flac",
    "spkA-002": "/corpus/a2.flac",
    "spkB-001": "sox /corpus/b1.wav -t wav - |",
}


def write_table(path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{k} {v}\n" for k, v in rows))


@pytest.fixture
def data(tmp_path):
    """A valid data dir (with text) at ``tmp_path/data/train``."""
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    write_table(d / "wav.scp", list(WAV.items()))
    write_table(d / "utt2spk", [(u, u.split("-")[0]) for u in WAV])
    write_table(d / "spk2utt", [("spkA", "spkA-001 spkA-002"), ("spkB", "spkB-001")])
    write_table(d / "text", [(u, "HELLO WORLD") for u in WAV])
    return d


def test_valid_dir(run_tool, data):
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "data/train: valid (3 utterances, 2 speakers)\n"
    r = run_tool("validate_data_dir.sh", "--no-feats", "--no-text", "data/train")
    assert r.returncode == 0, r.stderr


def test_text_required_unless_no_text(run_tool, data):
    (data / "text").unlink()
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 1
    assert "data/train/text: required file missing" in r.stderr
    assert "if this is by design, specify --no-text, as in Kaldi" in r.stderr  # Kaldi's hint
    assert r.stdout == ""
    assert run_tool("validate_data_dir.sh", "--no-text", "data/train").returncode == 0


def test_unsorted_wav_scp_shows_offending_lines(run_tool, data):
    rows = list(WAV.items())
    write_table(data / "wav.scp", [rows[1], rows[0], rows[2]])
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    i = lines.index("data/train/wav.scp:2: not sorted (LC_ALL=C): 'spkA-002' before 'spkA-001'")
    assert lines[i + 1 : i + 3] == [
        "    data/train/wav.scp:1: spkA-002 /corpus/a2.flac",
        "    data/train/wav.scp:2: spkA-001 /corpus/a1.flac",
    ]
    assert lines[-1] == "data/train: invalid (1 problem(s))"


def test_duplicate_key_shows_its_line(run_tool, data):
    with open(data / "text", "a") as f:
        f.write("spkB-001 AGAIN\n")
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 1
    assert "data/train/text:4: duplicated key 'spkB-001'" in r.stderr
    assert "    data/train/text:4: spkB-001 AGAIN" in r.stderr


def test_missing_utt2spk(run_tool, data):
    (data / "utt2spk").unlink()
    r = run_tool("validate_data_dir.sh", "--no-text", "data/train")
    assert r.returncode == 1
    assert "data/train/utt2spk: required file missing" in r.stderr


def test_mismatched_ids(run_tool, data):
    write_table(data / "text", [("spkA-001", "HI"), ("spkB-001", "HI"), ("spkB-009", "HI")])
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 1
    assert "data/train/text: utterance ids differ from wav.scp" in r.stderr
    assert "['spkB-009']" in r.stderr and "['spkA-002']" in r.stderr


def test_not_a_directory(run_tool):
    r = run_tool("validate_data_dir.sh", "data/none")
    assert r.returncode == 1
    assert "data/none: not a directory" in r.stderr


@pytest.mark.parametrize(
    "args", [[], ["a", "b"], ["--no-wav", "data/train"], ["--no-text"]], ids=str
)
def test_validate_usage_errors(run_tool, data, args):
    r = run_tool("validate_data_dir.sh", *args)
    assert r.returncode == 2
    assert "Usage:" in r.stderr


def test_fix_drops_ids_and_regenerates_spk2utt(run_tool, data):
    # wav.scp has an extra utterance and is unsorted; text lacks spkA-002; no spk2utt.
    write_table(
        data / "wav.scp",
        [("spkC-001", "/corpus/c1.flac"), *WAV.items()],
    )
    write_table(data / "utt2spk", [("spkC-001", "spkC")] + [(u, u[:4]) for u in WAV])
    write_table(data / "text", [("spkA-001", "HI"), ("spkB-001", "HI")])
    (data / "spk2utt").unlink()
    assert run_tool("validate_data_dir.sh", "data/train").returncode == 1

    r = run_tool("fix_data_dir.sh", "data/train")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("data/train: kept 2 utterances, dropped 2")
    assert (data / "spk2utt").read_text() == "spkA spkA-001\nspkB spkB-001\n"
    assert (data / "wav.scp").read_text() == "spkA-001 /corpus/a1.flac\n" + (
        "spkB-001 sox /corpus/b1.wav -t wav - |\n"
    )
    assert (data / ".backup" / "dropped").read_text() == "spkA-002\nspkC-001\n"
    r = run_tool("validate_data_dir.sh", "data/train")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "data/train: valid (2 utterances, 2 speakers)\n"


def test_fix_valid_dir_keeps_everything(run_tool, data):
    before = {p.name: p.read_text() for p in data.iterdir()}
    r = run_tool("fix_data_dir.sh", "data/train")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "data/train: kept 3 utterances, dropped 0\n"
    assert {p.name: p.read_text() for p in data.iterdir()} == before


def test_fix_errors(tmp_path, run_tool, data):
    assert run_tool("fix_data_dir.sh").returncode == 2
    assert run_tool("fix_data_dir.sh", "a", "b").returncode == 2
    r = run_tool("fix_data_dir.sh", "data/none")
    assert r.returncode == 1
    assert "data/none: not a directory" in r.stderr
    (data / "utt2spk").unlink()
    r = run_tool("fix_data_dir.sh", "data/train")
    assert r.returncode == 1
    assert "wav.scp and utt2spk are required" in r.stderr
