"""`codectk stream` / `stream_latency` precision choice (--precision fp32|bf16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import stream
from codectk.bin.stream_latency import measure
from codectk.errors import CodectkError
from codectk.inference import load_codec
from test.bin.test_audiodec_bins import _tiny_symad_exp
from test.single_thread import one_torch_thread  # noqa: F401


def test_stream_bf16_close_to_fp32_and_errors(tmp_path: Path, flacs):
    exp = _tiny_symad_exp(tmp_path)
    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[:fs], fs, subtype="FLOAT")
    outs = {}
    for precision in ("fp32", "bf16"):
        outs[precision] = tmp_path / f"{precision}.wav"
        args = [str(src), str(outs[precision]), "--model", str(exp), "--precision", precision]
        assert stream.main(args) == 0
    y32, y16 = (sf.read(outs[p], dtype="float64")[0] for p in ("fp32", "bf16"))
    assert len(y16) == len(y32) == fs
    snr = 10 * np.log10(np.sum(y32**2) / np.sum((y16 - y32) ** 2))
    assert 10 < snr < 200  # close, but not the same arithmetic
    with pytest.raises(CodectkError, match="needs --engine fast"):
        stream.main([str(src), str(tmp_path / "m.wav"), "--model", str(exp), "--engine", "module",
                     "--precision", "bf16"])  # fmt: skip
    with pytest.raises(CodectkError, match="choose one of \\['fp32', 'bf16'\\]"):
        stream.precision_dtype("fp16", "fast")
    r = measure(load_codec(exp, fold_weight_norm=True), 12.5, 0.2, "cpu", "fast",
                stream.PRECISIONS["bf16"])  # fmt: skip
    assert r["precision"] == "bf16" and r["engine"] == "fast" and r["chunks"] == 16


def test_stream_compiled_engine_equals_fast_engine(tmp_path: Path, flacs):
    exp = _tiny_symad_exp(tmp_path)  # hop 160
    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[: fs + 77], fs, subtype="FLOAT")  # 1 s + a partial chunk
    with pytest.raises(CodectkError, match="multiple of the hop length 160"):
        stream.main(
            [str(src), str(tmp_path / "x.wav"), "--model", str(exp), "--engine", "compiled"]
        )  # fmt: skip  (12.5 ms = 200 samples)
    outs = {}
    for engine in ("fast", "compiled"):
        outs[engine] = tmp_path / f"{engine}.wav"
        args = [str(src), str(outs[engine]), "--model", str(exp), "--engine", engine,
                "--chunk_ms", "20", "--autotune", "false"]  # fmt: skip
        try:
            assert stream.main(args) == 0
        except CodectkError as e:
            if "C++ compiler" in str(e):
                pytest.skip(str(e))
            raise
    y_fast, y_comp = (sf.read(outs[e], dtype="float32")[0] for e in ("fast", "compiled"))
    assert len(y_comp) == len(y_fast) == fs + 77
    assert np.abs(y_comp - y_fast).max() <= 2 / 32768  # equal up to the 16-bit WAV rounding
