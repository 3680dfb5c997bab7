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
