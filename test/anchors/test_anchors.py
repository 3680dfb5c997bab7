"""Opus and Codec 2 anchors with the real Debian tools on bundled speech."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from codectk.anchors import MAX_DELAY_MS, AnchorError, decode_set, get_anchor, score_set
from codectk.bin import anchors as anchors_bin
from codectk.io.datadir import read_scp, write_scp
from test.conftest import bundled_flacs
from test.report.conftest import HAVE_ANCHOR_TOOLS

needs_tools = pytest.mark.skipif(
    not HAVE_ANCHOR_TOOLS,
    reason="opus-tools or codec2 not installed (tools/install_system_deps.sh)",
)


@pytest.fixture(scope="module")
def ref_scp(tmp_path_factory) -> Path:
    """Two whole bundled utterances (11 s each: container overhead stays small)."""
    d = tmp_path_factory.mktemp("anchors")
    write_scp(d / "wav.scp", {f.stem: str(f) for f in bundled_flacs()[:2]})
    return d / "wav.scp"


@needs_tools
@pytest.mark.parametrize(
    "name,kbps,tolerance",
    [
        ("opus", 6, 0.08),
        ("opus", 12, 0.08),
        ("opus", 24, 0.08),
        ("codec2", 1.2, 0.01),
        ("codec2", 3.2, 0.01),
    ],
)
def test_measured_bitrate_near_nominal(ref_scp: Path, tmp_path: Path, name, kbps, tolerance):
    anchor = get_anchor(name)
    out = decode_set(anchor, kbps, ref_scp, "test", tmp_path / "anchors")
    assert out == tmp_path / "anchors" / f"{name}_{kbps:g}" / "decode_test"
    meta = json.loads((out / "anchor.json").read_text())
    refs, decoded = read_scp(ref_scp), read_scp(out / "wav.scp")
    assert set(decoded) == set(refs) and meta["n_utts"] == 2
    seconds = sum(sf.info(p).frames / sf.info(p).samplerate for p in refs.values())
    assert meta["total_seconds"] == pytest.approx(seconds)
    utt2bytes = {u: int(b) for u, b in read_scp(out / "utt2bytes").items()}
    assert sum(utt2bytes.values()) == meta["total_bytes"]
    measured = float((out / "bitrate").read_text())
    assert measured == pytest.approx(meta["total_bytes"] * 8 / seconds / 1000, rel=1e-5)
    assert measured == pytest.approx(kbps, rel=tolerance), measured
    for utt, path in decoded.items():  # same rate and length as the reference
        info, ref_info = sf.info(path), sf.info(refs[utt])
        assert (info.samplerate, info.frames) == (ref_info.samplerate, ref_info.frames)


@needs_tools
def test_idempotent_and_redone_when_the_list_changes(ref_scp: Path, tmp_path: Path):
    anchor = get_anchor("codec2")
    out = decode_set(anchor, 2.4, ref_scp, "test", tmp_path)
    stamp = (out / "anchor.json").stat().st_mtime_ns
    wav_stamp = (out / "wav.scp").stat().st_mtime_ns
    decode_set(anchor, 2.4, ref_scp, "test", tmp_path)
    assert (out / "anchor.json").stat().st_mtime_ns == stamp
    assert (out / "wav.scp").stat().st_mtime_ns == wav_stamp
    one = tmp_path / "one.scp"
    one.write_text(ref_scp.read_text().splitlines()[0] + "\n")
    decode_set(anchor, 2.4, one, "test", tmp_path)
    assert len(read_scp(out / "wav.scp")) == 1


def test_bad_anchor_and_bitrate(ref_scp: Path, tmp_path: Path, capsys):
    with pytest.raises(
        ValueError, match=r"anchor 'mp3' not supported; choose one of \['codec2', 'opus'\]"
    ):
        get_anchor("mp3")
    with pytest.raises(
        ValueError, match=r"codec2 bitrate 1.6 kbps not supported; choose from \[1.2, 2.4, 3.2\]"
    ):
        get_anchor("codec2").check_kbps(1.6)
    with pytest.raises(SystemExit) as exc:
        anchors_bin.main(
            [
                "--anchors",
                "opus",
                "--opus_kbps",
                "4",
                "--ref_scp",
                str(ref_scp),
                "--set",
                "t",
                "--anchors_dir",
                str(tmp_path),
            ]
        )
    assert exc.value.code == 2 and "outside [6, 256]" in capsys.readouterr().err


def test_missing_tool_names_the_package(ref_scp: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no opusenc there
    with pytest.raises(
        AnchorError,
        match="opusenc, opusdec not found on PATH; install the Debian package 'opus-tools'",
    ):
        decode_set(get_anchor("opus"), 6, ref_scp, "test", tmp_path)


@needs_tools
def test_anchor_scores_are_delay_compensated(ref_scp: Path, tmp_path: Path):
    """Codec 2 at 1.2 kbps (about 20 ms late) and Opus at 24 kbps (a fraction of a sample)
    score higher on the sample-aligned metrics with the delay removed, and the delay
    found is in the summary; PESQ, which aligns by itself, is unchanged."""
    metrics = ["pesq", "stoi", "si_sdr"]
    for name, kbps, delay_ms in (("codec2", 1.2, (18, 23)), ("opus", 24, (-0.1, 0.1))):
        dec = decode_set(get_anchor(name), kbps, ref_scp, "test", tmp_path)
        off = json.loads(
            (score_set(dec, ref_scp, "test", metrics, max_delay_ms=0) / "summary.json").read_text()
        )
        assert "delay" not in off
        on = json.loads((score_set(dec, ref_scp, "test", metrics) / "summary.json").read_text())
        assert on["delay"]["max_delay_ms"] == MAX_DELAY_MS == 50
        assert delay_ms[0] <= on["delay"]["ms"]["mean"] <= delay_ms[1], on["delay"]
        assert on["pesq"]["mean"] == off["pesq"]["mean"]
        if name == "codec2":  # its synthesised phases leave SI-SDR meaningless either way
            assert on["stoi"]["mean"] > off["stoi"]["mean"] + 0.05
        else:
            assert on["si_sdr"]["mean"] > off["si_sdr"]["mean"] + 3
        header = (dec.parent / "scores/test/per_utt.tsv").read_text().splitlines()[0]
        assert header.split("\t") == ["utt", *metrics, "delay_ms"]
        again = score_set(dec, ref_scp, "test", metrics)  # up to date: not rescored
        assert (again / "summary.json").read_text() == json.dumps(on, indent=2) + "\n"
