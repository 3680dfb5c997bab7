"""utils/utt2spk_to_spk2utt.pl and utils/spk2utt_to_utt2spk.pl."""

from __future__ import annotations

UTT2SPK = "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\nspkC-u1 spkC\nspkC-u2 spkC\n"
SPK2UTT = "spkA spkA-u1 spkA-u2\nspkB spkB-u1\nspkC spkC-u1 spkC-u2\n"


def test_utt2spk_to_spk2utt(tmp_path, run_tool):
    (tmp_path / "utt2spk").write_text(UTT2SPK)
    r = run_tool("utt2spk_to_spk2utt.pl", "utt2spk")
    assert r.returncode == 0, r.stderr
    assert r.stdout == SPK2UTT


def test_first_appearance_order(run_tool):
    r = run_tool("utt2spk_to_spk2utt.pl", stdin="u1 s2\nu2 s1\nu3 s2\n")
    assert r.stdout == "s2 u1 u3\ns1 u2\n"


def test_round_trip(tmp_path, run_tool):
    r = run_tool("utt2spk_to_spk2utt.pl", stdin=UTT2SPK)
    (tmp_path / "spk2utt").write_text(r.stdout)
    back = run_tool("spk2utt_to_utt2spk.pl", "spk2utt")
    assert back.returncode == 0, back.stderr
    assert back.stdout == UTT2SPK
    assert run_tool("spk2utt_to_utt2spk.pl", stdin=SPK2UTT).stdout == UTT2SPK


def test_malformed_lines_are_errors(tmp_path, run_tool):
    (tmp_path / "bad").write_text("u1 s1\nu2 s1 extra\n")
    r = run_tool("utt2spk_to_spk2utt.pl", "bad")
    assert r.returncode == 1
    assert "bad:2" in r.stderr
    (tmp_path / "bad2").write_text("s1 u1\ns2\n")
    r = run_tool("spk2utt_to_utt2spk.pl", "bad2")
    assert r.returncode == 1
    assert "bad2:2" in r.stderr
    assert run_tool("utt2spk_to_spk2utt.pl", "--bogus").returncode == 2
