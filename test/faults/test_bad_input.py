"""A corpus of broken inputs through stage 2 (dump) and the data-dir readers.

Each input either works (and is dumped correctly) or stops with a message naming the
file and the wav.scp line; with ``--on_error skip`` it is listed in ``dropped`` and
nothing else is lost.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import dump_wav
from codectk.errors import CodectkError
from codectk.io.datadir import DataDirError, read_scp, validate_data_dir, write_scp
from test.conftest import REPO, bundled_flacs

FS = 16000


def _speech(seconds: float = 1.0) -> np.ndarray:
    data, fs = sf.read(str(bundled_flacs()[0]), dtype="float32", frames=int(seconds * FS))
    assert fs == FS
    return data


def _make(tmp: Path) -> dict[str, tuple[str, str]]:
    """utt -> (wav.scp value, expected outcome: 'ok' or 'error')."""
    d = tmp / "corpus"
    d.mkdir()
    x = _speech()
    cases: dict[str, tuple[str, str]] = {}

    def add(name: str, path: Path | str, outcome: str) -> None:
        cases[f"spk-{name}"] = (str(path), outcome)

    flac = d / "truncated.flac"
    blob = bundled_flacs()[1].read_bytes()
    flac.write_bytes(blob[: len(blob) // 3])
    add("a-truncated-flac", flac, "error")
    sf.write(d / "empty.wav", np.zeros(0, np.float32), FS)
    add("b-zero-length", d / "empty.wav", "error")
    header = d / "header_only.wav"
    header.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, FS, 2 * FS, 2, 16)
        + b"data"
        + struct.pack("<I", 0)
    )
    add("c-header-only", header, "error")
    nan = x.copy()
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, FS, subtype="FLOAT")
    add("d-nan", d / "nan.wav", "error")
    inf = x.copy()
    inf[5] = np.inf
    sf.write(d / "inf.wav", inf, FS, subtype="FLOAT")
    add("e-inf", d / "inf.wav", "error")
    sf.write(d / "clipped.wav", np.clip(x * 50, -1, 1), FS)
    add("f-clipped", d / "clipped.wav", "ok")
    sf.write(d / "silent.wav", np.zeros(FS, np.float32), FS)
    add("g-silent", d / "silent.wav", "ok")
    sf.write(d / "u8.wav", x, FS, subtype="PCM_U8")
    add("h-8bit", d / "u8.wav", "ok")
    sf.write(d / "stereo.wav", np.stack([x, -x], axis=1), FS)
    add("i-stereo", d / "stereo.wav", "ok")
    sf.write(d / "sr22050.wav", x[:8000], 22050)
    add("j-other-rate", d / "sr22050.wav", "ok")
    spaced = d / "with space é.flac"
    shutil.copy(bundled_flacs()[2], spaced)
    add("k-space-nonascii", spaced, "ok")
    add("l-failing-pipe", "sox /nonexistent/x.flac -t wav - |", "error")
    add("m-missing", d / "missing.wav", "error")
    add("n-good-pipe", f"sox {bundled_flacs()[3]} -t wav - |", "ok")
    return cases


@pytest.fixture
def cases(tmp_path: Path):
    return _make(tmp_path)


def _dump(tmp: Path, table: dict[str, str], on_error: str = "stop") -> Path:
    scp = tmp / "in" / "wav.scp"
    write_scp(scp, table)
    out = tmp / "out"
    dump_wav.main(
        [
            "--fs",
            str(FS),
            "--in_scp",
            str(scp),
            "--out_wav_dir",
            str(tmp / "wav"),
            "--out_dir",
            str(out),
            "--on_error",
            on_error,
        ]
    )
    return out


def test_each_input_works_or_names_file_and_line(tmp_path: Path, cases):
    for utt, (spec, outcome) in sorted(cases.items()):
        sub = tmp_path / utt
        try:
            out = _dump(sub, {utt: spec})
        except CodectkError as exc:
            assert outcome in ("error", "either"), f"{utt}: unexpected error {exc}"
            msg = str(exc)
            shown = spec[:-1].strip() if spec.endswith("|") else spec
            assert shown in msg and "wav.scp:1" in msg, f"{utt}: message lacks file/line: {msg}"
            continue
        assert outcome in ("ok", "either"), f"{utt}: should have failed"
        wav = read_scp(out / "wav.scp")
        y, fs = sf.read(wav[utt], dtype="float32")
        assert (
            fs == FS and y.ndim == 1 and len(y) == int(read_scp(out / "utt2num_samples")[utt]) > 0
        )
        assert np.isfinite(y).all()


def test_skip_lists_dropped_and_loses_nothing_else(tmp_path: Path, cases):
    table = {u: s for u, (s, _) in cases.items()}
    out = _dump(tmp_path, table, on_error="skip")
    kept, dropped = read_scp(out / "wav.scp"), read_scp(out / "dropped")
    assert set(kept) | set(dropped) == set(table) and not set(kept) & set(dropped)
    must_drop = {u for u, (_, o) in cases.items() if o == "error"}
    must_keep = {u for u, (_, o) in cases.items() if o == "ok"}
    assert must_drop <= set(dropped) and must_keep <= set(kept)
    for reason in dropped.values():
        assert "wav.scp:" in reason, reason


def test_cli_error_is_one_line_without_traceback(tmp_path: Path):
    scp = tmp_path / "wav.scp"
    write_scp(scp, {"spk-x": str(tmp_path / "nope.wav")})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "codectk.bin.dump_wav",
            "--fs",
            "16000",
            "--in_scp",
            str(scp),
            "--out_wav_dir",
            str(tmp_path / "w"),
            "--out_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"audio file not found: {tmp_path / 'nope.wav'} ({scp}:1)" in proc.stderr


def test_table_errors(tmp_path: Path):
    scp = tmp_path / "wav.scp"
    scp.write_bytes(b"spk-a a.wav\r\nspk-b b.wav\r\n")
    assert read_scp(scp) == {"spk-a": "a.wav", "spk-b": "b.wav"}  # CRLF works
    scp.write_text("spk-a a.wav\nspk-b b.wav\nspk-a c.wav\n")
    with pytest.raises(DataDirError, match=r"wav.scp:3: duplicated key 'spk-a'"):
        read_scp(scp)
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text("spk-b b.wav\nspk-a a.wav\n")
    (d / "utt2spk").write_text("spk-b spk\nspk-a spk\n")
    (d / "spk2utt").write_text("spk spk-a spk-b\n")
    problems = validate_data_dir(d)
    assert any("wav.scp:2: not sorted" in p for p in problems)
    (d / "wav.scp").write_text("")
    assert any("empty file" in p for p in validate_data_dir(d))


def test_wrong_rate_for_training_is_named(tmp_path: Path, dumped):
    from codectk.data.dataset import read_lengths

    bad = tmp_path / "d"
    shutil.copytree(dumped["valid"], bad)
    (bad / "fs").write_text("24000\n")
    with pytest.raises(
        DataDirError, match=r"dumped at 24000 Hz but the codec expects 16000 Hz; re-run stage 2"
    ):
        read_lengths(bad, 16000)
