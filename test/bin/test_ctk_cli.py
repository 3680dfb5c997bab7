"""``codectk encode / decode / info`` on bundled real speech with a tiny trained model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codectk.bin import cli, train
from codectk.inference import load_codec
from codectk.io.audio import read_audio, resample, to_mono
from codectk.io.bitstream import CHUNK_OVERHEAD, BitstreamError, read_bitstream
from test.conftest import bundled_flacs
from test.helpers import write_conf


@pytest.fixture(scope="module")
def model(tmp_path_factory, dumped) -> Path:
    root = tmp_path_factory.mktemp("exp")
    exp = root / "codec_tiny"
    args = ["--config", str(write_conf(root / "conf.yaml")), "--output_dir", str(exp)]
    args += ["--train_data", str(dumped["train"]), "--valid_data", str(dumped["valid"])]
    assert train.main([*args, "--max_steps", "2", "--valid_interval", "2"]) == 0
    return exp


def _reference(codec, x: np.ndarray, n_q: int | None = None) -> np.ndarray:
    with torch.inference_mode():
        t = torch.from_numpy(x)[None, None]  # (T,) -> (1, 1, T)
        return codec.decode(codec.encode(t, n_q))[0, 0, : len(x)].numpy()


def test_fold_weight_norm_keeps_outputs(model: Path):
    plain, folded = load_codec(model), load_codec(model, fold_weight_norm=True)
    assert any(".parametrizations." in k for k in plain.state_dict())
    assert not any(".parametrizations." in k for k in folded.state_dict())
    x, _ = read_audio(str(bundled_flacs()[0]))
    x = to_mono(x)[:16000]
    with torch.inference_mode():
        t = torch.from_numpy(x)[None, None]
        codes = plain.encode(t)
        torch.testing.assert_close(folded.encode(t), codes, rtol=0, atol=0)
        torch.testing.assert_close(folded.decode(codes), plain.decode(codes), rtol=0, atol=1e-5)


def test_encode_info_decode_files(tmp_path: Path, model: Path, capsys):
    codec = load_codec(model)
    for flac in bundled_flacs()[:2]:
        ctk, out = tmp_path / f"{flac.stem}.ctk", tmp_path / f"{flac.stem}.wav"
        assert cli.main(["encode", str(flac), str(ctk), "--model", str(model)]) == 0
        assert cli.main(["info", "--json", str(ctk)]) == 0
        facts = json.loads(capsys.readouterr().out)
        x = to_mono(read_audio(str(flac))[0])
        assert facts["length"] == len(x) and facts["sample_rate"] == 16000
        assert facts["duration"] == pytest.approx(len(x) / 16000)
        # size = nominal bitrate x duration + header + a few bytes per chunk
        nominal = codec.bitrate() * 1000 / 8 * facts["duration"]
        n_chunks = math.ceil(facts["n_frames"] / facts["chunk_frames"])
        frame_bytes = codec.bitrate() * 1000 / 8 / codec.frame_rate
        overhead = ctk.stat().st_size - nominal
        assert 0 < overhead < 300 + n_chunks * (CHUNK_OVERHEAD + 1) + frame_bytes
        assert cli.main(["decode", str(ctk), str(out), "--model", str(model)]) == 0
        y, fs = sf.read(out, dtype="float32")
        assert fs == codec.sample_rate and len(y) == len(x)
        np.testing.assert_allclose(y, _reference(codec, x), atol=1e-4)


def test_folder_and_scp_inputs(tmp_path: Path, model: Path):
    src = tmp_path / "in"
    for i, flac in enumerate(bundled_flacs()[:2]):  # 2 s excerpts keep the test fast
        (src / f"spk{i}").mkdir(parents=True)
        x, fs = sf.read(flac, dtype="float32", frames=32000)
        sf.write(src / f"spk{i}" / flac.name, x, fs)
    rc = cli.main(["encode", str(src), str(tmp_path / "ctk"), "--model", str(model)])
    assert rc == 0
    ctks = sorted(p.relative_to(tmp_path / "ctk") for p in (tmp_path / "ctk").rglob("*.ctk"))
    assert ctks == sorted(p.relative_to(src).with_suffix(".ctk") for p in src.rglob("*.flac"))
    assert (
        cli.main(["decode", str(tmp_path / "ctk"), str(tmp_path / "wav"), "--model", str(model)])
        == 0
    )
    assert len(list((tmp_path / "wav").rglob("*.wav"))) == 2

    scp = tmp_path / "wav.scp"
    flacs = sorted(src.rglob("*.flac"))
    scp.write_text("".join(f"utt{i} {f}\n" for i, f in enumerate(flacs)))
    assert (
        cli.main(
            ["encode", str(scp), str(tmp_path / "c2"), "--model", str(model), "--bandwidth", "0.8"]
        )
        == 0
    )
    header, codes = read_bitstream(tmp_path / "c2" / "utt1.ctk")
    assert codes.shape[0] == header["n_codebooks"] == 2
    ctk_scp = tmp_path / "ctk.scp"
    ctk_scp.write_text("".join(f"utt{i} {tmp_path / 'c2' / f'utt{i}.ctk'}\n" for i in range(2)))
    assert cli.main(["decode", str(ctk_scp), str(tmp_path / "w2"), "--model", str(model)]) == 0
    codec = load_codec(model)
    x = to_mono(read_audio(str(flacs[1]))[0])
    y, _ = sf.read(tmp_path / "w2" / "utt1.wav", dtype="float32")
    np.testing.assert_allclose(y, _reference(codec, x, 2), atol=1e-4)


def test_stereo_24k_input_is_converted(tmp_path: Path, model: Path, capsys):
    x16 = to_mono(read_audio(str(bundled_flacs()[0]))[0])[:24000]
    x24 = resample(x16, 16000, 24000)
    stereo = np.stack([x24, 0.5 * x24])  # (2, T)
    sf.write(tmp_path / "st.wav", stereo.T, 24000, subtype="FLOAT")
    ctk = tmp_path / "st.ctk"
    assert cli.main(["encode", str(tmp_path / "st.wav"), str(ctk), "--model", str(model)]) == 0
    err = capsys.readouterr().err
    assert "2 channels averaged to mono" in err and "resampled from 24000 Hz to 16000 Hz" in err
    header, _ = read_bitstream(ctk)
    assert header["length"] == round(len(x24) * 16000 / 24000)
    assert cli.main(["decode", str(ctk), str(tmp_path / "st_out.wav"), "--model", str(model)]) == 0
    assert sf.info(tmp_path / "st_out.wav").samplerate == 16000


def test_wrong_model_and_bad_files_refused(tmp_path: Path, model: Path, capsys):
    ctk = tmp_path / "a.ctk"
    assert cli.main(["encode", str(bundled_flacs()[0]), str(ctk), "--model", str(model)]) == 0
    other = tmp_path / "other.pt"
    obj = torch.load(model / "valid.mel_distance.ave.pt", weights_only=True)
    obj["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in obj["model"].items()}
    torch.save(obj, other)
    with pytest.raises(
        BitstreamError, match=r"encoded with model [0-9a-f]{16} .*given model is [0-9a-f]{16}"
    ):
        cli.main(["decode", str(ctk), str(tmp_path / "a.wav"), "--model", str(other)])
    assert not (tmp_path / "a.wav").exists()
    ctk.write_bytes(ctk.read_bytes()[:-3])
    with pytest.raises(BitstreamError, match="a.ctk: truncated"):
        cli.main(["info", str(ctk)])


def test_codec_inference_is_stage6(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["codec_inference", "--help"])
    assert exc.value.code == 0 and "Stage 6" in capsys.readouterr().out


def test_bandwidth_rounds_down_and_an_unreachable_one_is_one_line(tmp_path: Path, model: Path):
    """EnCodec users' habit: a target bitrate is rounded down to the ladder (0.4, 0.8,
    1.2, 1.6 kbps here) with a note; below the lowest is one ERROR line, no traceback."""
    flac = str(bundled_flacs()[0])
    proc = subprocess.run(
        [sys.executable, "-m", "codectk.bin.cli", "encode", flac, str(tmp_path / "a.ctk")]
        + ["--model", str(model), "--bandwidth", "3.0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bandwidth 3 kbps is not one of [0.4, 0.8, 1.2, 1.6]: using 1.600 kbps" in proc.stderr
    assert read_bitstream(tmp_path / "a.ctk")[0]["n_codebooks"] == 4
    assert cli.main(["encode", flac, str(tmp_path / "b.ctk"), "--model", str(model)]) == 0
    assert (
        cli.main(
            ["encode", flac, str(tmp_path / "c.ctk"), "--model", str(model)]
            + ["--bandwidth", "1.0"]
        )
        == 0
    )
    assert read_bitstream(tmp_path / "c.ctk")[0]["n_codebooks"] == 2
    proc = subprocess.run(
        [sys.executable, "-m", "codectk.bin.cli", "encode", flac, str(tmp_path / "d.ctk")]
        + ["--model", str(model), "--bandwidth", "0.1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bandwidth 0.1 kbps is below the lowest bitrate" in proc.stderr
    assert "choose one of [0.4, 0.8, 1.2, 1.6] kbps" in proc.stderr
    assert not (tmp_path / "d.ctk").exists()
