from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.io.audio import AudioError, read_audio, resample, to_mono, write_audio


def test_read_flac(flacs):
    wav, fs = read_audio(str(flacs[0]))
    assert fs == 16000 and wav.ndim == 2 and wav.shape[0] == 1 and wav.dtype == np.float32
    assert wav.shape[1] == sf.info(str(flacs[0])).frames


def test_read_pipe(flacs):
    wav, fs = read_audio(f"sox {flacs[0]} -t wav - |")
    ref, _ = read_audio(str(flacs[0]))
    np.testing.assert_allclose(wav, ref, atol=1e-4)


def test_errors_name_the_source(tmp_path: Path):
    with pytest.raises(AudioError, match=r"not found: .*missing.wav \(wav.scp:3\)"):
        read_audio(str(tmp_path / "missing.wav"), where="wav.scp:3")
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + b"\0" * 10)
    with pytest.raises(AudioError, match="cannot decode"):
        read_audio(str(bad))
    with pytest.raises(AudioError, match="pipe command failed"):
        read_audio("false |", where="wav.scp:1")


def test_resample_length_and_content():
    fs_in, fs_out = 16000, 24000
    t = np.arange(fs_in) / fs_in
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, fs_in, fs_out)
    assert len(y) == fs_out
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * fs_out / len(y) - 440) < 2


def test_write_roundtrip_and_mono(tmp_path: Path):
    x = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)]).astype(np.float32)
    mono = to_mono(x)
    write_audio(tmp_path / "a.wav", mono, 8000)
    y, fs = read_audio(str(tmp_path / "a.wav"))
    assert fs == 8000
    np.testing.assert_allclose(y[0], mono, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
