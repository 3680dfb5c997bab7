"""The user-facing encode / decode (codectk.models.api) and the Codec helpers around
them: input types, bandwidth rounding, compress / decompress, long audio in windows."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import codectk
from codectk.config import ConfigError
from codectk.io.audio import AudioFormatError, convert_audio
from codectk.io.bitstream import BitstreamError
from codectk.io.modelfile import model_file, save_atomic
from codectk.models import CODECS
from codectk.models.api import CodesError
from codectk.models.base import BandwidthError
from test.conftest import REPO, bundled_flacs
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401

FS = 16000


def speech(seconds: float) -> np.ndarray:
    """Bundled LibriSpeech utterances joined to ``seconds`` of float32 (T,)."""
    parts, total = [], 0
    for f in bundled_flacs():
        x, fs = sf.read(str(f), dtype="float32")
        assert fs == FS
        parts.append(x)
        total += len(x)
        if total >= seconds * FS:
            break
    return np.concatenate(parts)[: int(seconds * FS)]


def tiny_codec(seed: int = 0):
    """The test SoundStream (causal, no LSTM) in eval mode without gradients (as
    ``load_codec`` gives it), its codebooks random at the latent's scale: distinct
    entries, so that float rounding cannot flip a code at an exact tie."""
    torch.manual_seed(seed)
    codec = CODECS.build("soundstream", make_soundstream_conf()["codec_conf"])
    with torch.no_grad():
        scale = codec.latent(torch.from_numpy(speech(2.0))[None, None]).std()
        for layer in codec.quantizer.layers:
            book = layer.codebook
            book.embed.copy_(torch.randn_like(book.embed) * scale)
            book.initialized.fill_(True)
    return codec.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


def test_inputs_users_hold(codec):
    x = speech(0.5)
    ref = codec.encode(torch.from_numpy(x)[None, None])
    assert ref.shape == (1, 4, 25) and len(torch.unique(ref)) > 4
    for wav in (x.astype(np.float64), torch.from_numpy(x).double(), x[::1].copy()):
        assert torch.equal(codec.encode(wav), ref)
    pcm = np.round(x * 32767).astype(np.int16)
    assert torch.equal(codec.encode(pcm), codec.encode(pcm.astype(np.float32) / 32768))
    assert torch.equal(codec.encode(torch.from_numpy(pcm)), codec.encode(pcm))
    # codes in any integer type and (K, F) shape
    y = codec.decode(ref)
    assert torch.equal(codec.decode(ref[0].numpy().astype(np.int32)), y)
    assert not y.requires_grad


@pytest.mark.parametrize(
    ("wav", "message"),
    [
        (np.zeros(0, np.float32), "has no samples"),
        (np.zeros((1, 1, 0), np.float32), "has no samples"),
        (np.zeros((2, 800), np.float32), "wav must be (B, 1, T) or (T,), got shape (2, 800)"),
        (np.zeros(800, np.complex64), "use float32"),
        ([0.0, 0.1], "must be a torch.Tensor or numpy.ndarray"),
    ],
)
def test_bad_waveforms_are_named(codec, wav, message):
    with pytest.raises(AudioFormatError, match=re_escape(message)):
        codec.encode(wav)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_bad_codes_are_named(codec):
    with pytest.raises(CodesError, match="must be an integer tensor"):
        codec.decode(np.zeros((4, 3), np.float32))
    with pytest.raises(CodesError, match="have no frames"):
        codec.decode(np.zeros((4, 0), np.int64))
    with pytest.raises(ValueError, match="at most 960 samples"):
        codec.decode(np.zeros((4, 3), np.int64), length=961)


def test_loaded_codec_builds_no_graph(tmp_path: Path, codec):
    conf = make_soundstream_conf()
    save_atomic(model_file(conf, codec.state_dict(), 1), tmp_path / "m.pt")
    loaded = codectk.load_codec(tmp_path / "m.pt")
    out = loaded.decode(loaded.encode(speech(0.2)), length=3200)
    assert out.shape == (1, 1, 3200) and not out.requires_grad
    assert not any(p.requires_grad for p in loaded.parameters())


def test_bandwidth_rounds_down_with_a_note(codec, caplog):
    assert codec.bandwidths == pytest.approx([0.4, 0.8, 1.2, 1.6])
    assert codec.resolve_bandwidth(1.2) == (3, pytest.approx(1.2))
    assert codec.resolve_bandwidth(None) == (4, pytest.approx(1.6))
    with caplog.at_level("WARNING", logger="codectk"):
        assert codec.resolve_bandwidth(1.0) == (2, pytest.approx(0.8))
        assert codec.resolve_bandwidth(24) == (4, pytest.approx(1.6))
    assert "bandwidth 1 kbps is not one of [0.4, 0.8, 1.2, 1.6]: using 0.800 kbps" in caplog.text
    x = speech(0.5)
    assert torch.equal(codec.encode(x, bandwidth=1.0), codec.encode(x, 2))
    with pytest.raises(BandwidthError, match=re_escape("choose one of [0.4, 0.8, 1.2, 1.6] kbps")):
        codec.resolve_bandwidth(0.3)
    with pytest.raises(BandwidthError, match="below the lowest"):
        codec.encode(x, bandwidth=0)


def test_compress_decompress_keep_the_length(codec):
    x = speech(1.234)
    data = codec.compress(x, bandwidth=0.8)
    assert isinstance(data, bytes)
    y = codec.decompress(data)
    assert y.shape == (1, len(x)) and y.dtype == torch.float32
    ref = codec.decode(codec.encode(x, 2))[0, :, : len(x)]
    torch.testing.assert_close(y, ref)
    # another sample rate and channel count are converted
    stereo = np.stack([x, x])  # (C, T)
    resampled = convert_audio(stereo, FS, 24000, 2)
    assert codec.decompress(codec.compress(resampled, sample_rate=24000)).shape == (1, len(x))
    other = tiny_codec(seed=1)
    with pytest.raises(BitstreamError, match="decode with the same model"):
        other.decompress(data)


def test_convert_audio_downmixes_upmixes_and_resamples():
    x = speech(0.5)
    stereo = np.stack([x, -0.5 * x])  # (C, T)
    mono = convert_audio(stereo, FS, FS, 1)
    torch.testing.assert_close(mono[0], torch.from_numpy(0.25 * x))
    assert convert_audio(x, FS, FS, 2).shape == (2, len(x))
    assert convert_audio(stereo[None], FS, FS, 1).shape == (1, 1, len(x))  # (B, C, T)
    up = convert_audio(torch.from_numpy(x).double(), FS, 44100, 1)
    assert up.dtype == torch.float32 and up.shape[-1] == round(len(x) * 44100 / FS)
    back = convert_audio(up, 44100, FS, 1)[0, 1000:-1000]
    err = (back - torch.from_numpy(x)[1000:-1000]).pow(2).mean() / np.mean(x[1000:-1000] ** 2)
    assert 10 * math.log10(1 / err) > 40  # soxr's round trip, well over 40 dB
    pcm = (x * 32767).astype(np.int16)
    torch.testing.assert_close(
        convert_audio(pcm, FS, FS, 1)[0], torch.from_numpy(x), atol=1e-4, rtol=0
    )
    with pytest.raises(AudioFormatError, match="cannot make 3 channels from 2"):
        convert_audio(stereo, FS, FS, 3)


def test_long_audio_in_windows_equals_one_pass(codec):
    """40 s of speech in 10 s windows with 1 s of context: this causal, LSTM-free model's
    receptive field fits in the context, so codes are equal and the waveform equal up
    to float rounding (measured 1e-7)."""
    x = torch.from_numpy(speech(40.0))
    whole = codec.encode(x, window_s=math.inf)
    windowed = codec.encode(x, window_s=10, context_s=1)
    assert torch.equal(windowed, whole)
    y_whole = codec.decode(whole, window_s=math.inf)
    y_windowed = codec.decode(whole, window_s=10, context_s=1, length=len(x))
    assert y_windowed.shape == (1, 1, len(x))
    torch.testing.assert_close(y_windowed, y_whole[..., : len(x)], rtol=0, atol=1e-5)
    # without context the window edges differ: the test can fail
    assert not torch.allclose(codec.decode(whole, window_s=10, context_s=0), y_whole, atol=1e-5)


MEMORY_SCRIPT = """
import resource, sys, torch
sys.path.insert(0, {repo!r})
from test.models.test_api import tiny_codec
torch.set_num_threads(1)
codec = tiny_codec()
x = torch.randn(1, 1, 16000 * 600) * 0.1  # 10 minutes
codec.decode(codec.encode(x[..., :16000]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = codec.decode(codec.encode(x), length=x.shape[-1])
assert y.shape == x.shape
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def test_ten_minutes_in_bounded_memory():
    """10 minutes at 16 kHz through encode and decode in the default 30 s windows: the
    peak resident memory grows by under 400 MiB (measured 220 MiB: input, output and one
    window's activations); one pass over the whole file took 1279 MiB more."""
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(repo=str(REPO))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth = float(proc.stdout.strip().splitlines()[-1])
    assert growth < 400, f"peak memory grew by {growth:.0f} MiB"


def test_unprepared_ladiffcodec_config_says_what_to_do():
    with pytest.raises(ConfigError, match="ladiffcodec_prepare"):
        codectk.build_codec(REPO / "conf/ladiffcodec_diffusion_16k.yaml")


def test_dac_44k_8kbps_config_accepts_8_kbps(caplog):
    """The "8 kbps" DAC-44k has 9 codebooks of 0.861 kbps: 8 is rounded down to all 9."""
    codec = codectk.build_codec(REPO / "conf/dac_44k_8kbps.yaml")
    with caplog.at_level("WARNING", logger="codectk"):
        n, kbps = codec.resolve_bandwidth(8)
    assert (n, round(kbps, 3)) == (9, 7.752)
    assert "using 7.752 kbps (9 codebooks)" in caplog.text
