"""`codectk stream` / `stream_latency`: precision (--precision fp32|bf16), engines
(module, compiled; the removed "fast" runs module), and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import common, stream, stream_latency
from codectk.errors import CodectkError
from test.bin.test_audiodec_bins import _tiny_symad_exp
from test.single_thread import one_torch_thread  # noqa: F401


def test_stream_bf16_close_to_fp32_and_errors(tmp_path: Path, flacs, capsys):
    exp = _tiny_symad_exp(tmp_path)
    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[:fs], fs, subtype="FLOAT")
    outs = {}
    for precision, engine in (("fp32", "module"), ("bf16", "module"), ("fp32", "fast")):
        outs[precision, engine] = tmp_path / f"{precision}_{engine}.wav"
        args = [str(src), str(outs[precision, engine]), "--model", str(exp), "--precision",
                precision, "--engine", engine]  # fmt: skip
        assert stream.main(args) == 0
    y32, y16, yfast = (sf.read(outs[k], dtype="float64")[0] for k in outs)
    assert len(y16) == len(y32) == fs
    snr = 10 * np.log10(np.sum(y32**2) / np.sum((y16 - y32) ** 2))
    assert 10 < snr < 200  # close, but not the same arithmetic
    assert np.array_equal(yfast, y32)  # the removed fast engine maps to module
    with pytest.raises(CodectkError, match=r"--engine 'gpu' not supported; choose one of"):
        stream.main([str(src), str(tmp_path / "m.wav"), "--model", str(exp), "--engine", "gpu"])
    with pytest.raises(CodectkError, match="choose one of \\['fp32', 'bf16'\\]"):
        common.precision_dtype("fp16")
    assert stream_latency.main(["--model", str(exp), "--seconds", "0.2", "--precision", "bf16",
                                "--engine", "fast"]) == 0  # fmt: skip
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["precision"] == "bf16" and r["engine"] == "module" and r["chunks"] == 16
    assert r["algorithmic_delay_ms"] == 20.0  # 200-sample chunks wait for whole 160-sample hops


def test_stream_compiled_engine_equals_module_engine(tmp_path: Path, flacs):
    exp = _tiny_symad_exp(tmp_path)  # hop 160
    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[: fs + 77], fs, subtype="FLOAT")  # 1 s + a partial chunk
    with pytest.raises(CodectkError, match="multiple of the hop length 160"):
        stream.main(
            [str(src), str(tmp_path / "x.wav"), "--model", str(exp), "--engine", "compiled"]
        )  # fmt: skip  (12.5 ms = 200 samples)
    outs = {}
    for engine in ("module", "compiled"):
        outs[engine] = tmp_path / f"{engine}.wav"
        args = [str(src), str(outs[engine]), "--model", str(exp), "--engine", engine,
                "--chunk_ms", "20", "--autotune", "false"]  # fmt: skip
        try:
            assert stream.main(args) == 0
        except CodectkError as e:
            if "C++ compiler" in str(e):
                pytest.skip(str(e))
            raise
    y_mod, y_comp = (sf.read(outs[e], dtype="float32")[0] for e in ("module", "compiled"))
    assert len(y_comp) == len(y_mod) == fs + 77
    assert np.abs(y_comp - y_mod).max() <= 2 / 32768  # equal up to the 16-bit WAV rounding


def test_stream_command_streams_encodec_and_refuses_non_causal_codecs(tmp_path: Path, flacs):
    import torch

    from codectk.config import build_train_config
    from codectk.inference import load_codec
    from codectk.io.modelfile import model_file, save_atomic
    from codectk.models import CODECS
    from codectk.models.encodec import encodec_tiny_conf

    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[: fs // 2 + 33], fs, subtype="FLOAT")
    for causal in (True, False):
        conf = {"codec": "encodec", "codec_conf": encodec_tiny_conf(encoder={"causal": causal})}
        torch.manual_seed(0)
        codec = CODECS.build("encodec", conf["codec_conf"])
        with torch.no_grad():  # k-means initialises the codebooks: codes are not all 0
            codec.train()(0.1 * torch.randn(2, 1, 3200))
        cfg = build_train_config(conf).to_dict()
        exp = tmp_path / f"exp_{causal}"
        save_atomic(model_file(cfg, codec.state_dict(), 1, {}), exp / "valid.mel_distance.ave.pt")
        out = tmp_path / f"out_{causal}.wav"
        args = [str(src), str(out), "--model", str(exp), "--chunk_ms", "20"]
        if not causal:
            with pytest.raises(CodectkError, match="EnCodec cannot stream: .*non-causal"):
                stream.main(args)
            continue
        assert stream.main(args) == 0
        x, _ = sf.read(src, dtype="float32")
        codec = load_codec(exp)
        with torch.inference_mode():
            ref = codec.decode(codec.encode(torch.from_numpy(x)[None, None]))[0, 0, : len(x)]
        y, _ = sf.read(out, dtype="float32")
        assert len(y) == len(x) and ref.abs().max() > 1e-3
        assert np.abs(y - np.clip(ref.numpy(), -1, 1)).max() <= 2 / 32768
