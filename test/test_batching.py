"""Batched encoding/decoding gives each utterance what it gets alone; compile is opt-in."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from codectk.batching import (
    decode_batch,
    encode_batch,
    mixed_length_min_frames,
    plan_batches,
    right_padding_is_exact,
)
from codectk.bin import ctk
from codectk.inference import prepare_for_inference
from codectk.io.bitstream import read_bitstream
from codectk.io.modelfile import model_file, save_atomic
from codectk.models.dac import DAC, dac_tiny_conf
from codectk.models.encodec import EnCodec, encodec_tiny_conf
from test.conftest import REPO
from test.single_thread import one_torch_thread  # noqa: F401

# 16 kHz samples, hop 320: 4900 and 5000 share F = 16; 1000 (F = 4) is shorter than
# EnCodec's widest reflect padding, so it never shares a batch with other lengths.
LENGTHS = [3000, 4170, 5000, 4900, 1000, 3200]


def _codec(name: str):
    torch.manual_seed(0)
    if name == "encodec":  # causal; random codebooks instead of k-means on training data
        return EnCodec(**encodec_tiny_conf(quantizer={"kmeans_init": False})).eval()
    return DAC(**dac_tiny_conf()).eval()


def _one_by_one(codec, wavs):
    codes = [codec.encode(w[None, None])[0] for w in wavs]
    return codes, [codec.decode(c[None])[0, 0] for c in codes]


@pytest.mark.parametrize(("name", "exact"), [("encodec", True), ("dac", False)])
def test_batched_equals_one_by_one(name, exact):
    codec = prepare_for_inference(_codec(name))
    assert right_padding_is_exact(codec) is exact
    g = torch.Generator().manual_seed(1)
    wavs = [0.1 * torch.randn(n, generator=g) for n in LENGTHS]
    frames = [-(-n // codec.hop_length) for n in LENGTHS]
    min_frames = mixed_length_min_frames(codec)
    batches = plan_batches(frames, 3, min_frames)
    assert sorted(i for b in batches for i in b) == list(range(len(wavs)))
    if exact:
        assert min_frames == 9  # the 16-tap, stride-8 convolution pads 8 samples
        assert batches == [[2, 3, 1], [0, 5], [4]]
    else:
        assert min_frames is None
        assert batches == [[2, 3], [1], [0, 5], [4]]  # equal F only (16; 10)
    with torch.inference_mode():
        ref_codes, ref_wavs = _one_by_one(codec, wavs)
        for batch in batches:
            codes = encode_batch(codec, [wavs[i] for i in batch], None)
            for i, c, y in zip(batch, codes, decode_batch(codec, codes)):
                assert torch.equal(c, ref_codes[i])
                torch.testing.assert_close(y, ref_wavs[i], rtol=0, atol=1e-5)


def test_plan_batches_rules():
    assert plan_batches([5, 9, 7, 9], 2, min_frames=1) == [[1, 3], [2, 0]]
    assert plan_batches([5, 9, 7, 9], 3, min_frames=None) == [[1, 3], [2], [0]]
    assert plan_batches([5, 9, 7, 9, 5], 3, min_frames=7) == [[1, 3, 2], [0, 4]]
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches([1], 0, min_frames=1)


def test_cli_batch_size_gives_identical_files(tmp_path: Path):
    codec = _codec("encodec")
    conf = {"codec": "encodec", "codec_conf": encodec_tiny_conf(quantizer={"kmeans_init": False})}
    from codectk.config import build_train_config

    model = tmp_path / "model.pt"
    save_atomic(model_file(build_train_config(conf).to_dict(), codec.state_dict(), 0), model)
    src = tmp_path / "in"
    src.mkdir()
    g = np.random.default_rng(0)
    import soundfile as sf

    for i, n in enumerate(LENGTHS):
        sf.write(src / f"u{i}.wav", 0.1 * g.standard_normal(n), 16000, subtype="FLOAT")
    for bs in (1, 4):
        args = ["--model", str(model), "--batch_size", str(bs), "--num_threads", "1"]
        assert ctk.main(["encode", str(src), str(tmp_path / f"ctk{bs}"), *args]) == 0
        out = tmp_path / f"wav{bs}"
        assert ctk.main(["decode", str(tmp_path / f"ctk{bs}"), str(out), *args]) == 0
    for i, n in enumerate(LENGTHS):
        h1, c1 = read_bitstream(tmp_path / f"ctk1/u{i}.ctk")
        h4, c4 = read_bitstream(tmp_path / f"ctk4/u{i}.ctk")
        assert h1 == h4 and np.array_equal(c1, c4)
        y1, _ = sf.read(tmp_path / f"wav1/u{i}.wav")
        y4, _ = sf.read(tmp_path / f"wav4/u{i}.wav")
        assert len(y1) == n and np.abs(y1 - y4).max() <= 1 / 32768


def test_compile_is_opt_in():
    codec = prepare_for_inference(_codec("encodec"))
    for module in (codec.encoder, codec.decoder):
        assert inspect.ismethod(module.forward)  # the class's own forward, not compiled
    assert ctk.main is not None and "--compile" in inspect.getsource(ctk._common_args)


_COMPILE_CHECK = """
import torch
from codectk.inference import prepare_for_inference
from codectk.models.encodec import EnCodec, encodec_tiny_conf
torch.set_num_threads(1)
torch.manual_seed(0)
codec = EnCodec(**encodec_tiny_conf(quantizer={"kmeans_init": False})).eval()
x = 0.1 * torch.randn(2, 1, 4000)
with torch.inference_mode():
    ref_codes = codec.encode(x)
    ref = codec.decode(ref_codes)
    prepare_for_inference(codec, compile=True)
    codes = codec.encode(x)
    assert torch.equal(codes, ref_codes)
    torch.testing.assert_close(codec.decode(codes), ref, rtol=0, atol=1e-5)
print("compiled output unchanged")
"""


def test_compile_keeps_outputs():
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _COMPILE_CHECK],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("torch.compile takes more than 180 s on this CPU")
    no_compiler = ("InvalidCxxCompiler", "CppCompileError", "No working C++ compiler")
    if proc.returncode != 0 and any(m in proc.stderr for m in no_compiler):
        pytest.skip(f"no C++ compiler for torch.compile: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "compiled output unchanged" in proc.stdout
