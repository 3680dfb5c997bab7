"""Stages 5-8 entry points (train, decode, score, pack) and the Python API."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import codectk
from codectk.bin import codec_inference, compare_scores, pack, score, train
from codectk.io.codes import read_codes
from codectk.io.datadir import read_scp
from codectk.io.modelfile import CheckpointError
from test.helpers import write_conf


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dumped) -> Path:
    root = tmp_path_factory.mktemp("exp")
    conf = write_conf(root / "conf.yaml")
    exp = root / "codec_tiny"
    args = [
        "--config",
        str(conf),
        "--train_data",
        str(dumped["train"]),
        "--valid_data",
        str(dumped["valid"]),
        "--output_dir",
        str(exp),
    ]
    assert train.main([*args, "--max_steps", "4"]) == 0
    return exp


def test_decode_score_pack(tmp_path: Path, trained: Path, dumped):
    out = tmp_path / "decode"
    codec_inference.main(
        [
            "--model",
            str(trained),
            "--in_scp",
            str(dumped["valid"] / "wav.scp"),
            "--out_dir",
            str(out),
            "--wav_dir",
            str(out / "wav"),
            "--target_bandwidth",
            "0.8",
        ]
    )
    wavs = read_scp(out / "wav.scp")
    codes = read_codes(out / "codes.scp")
    refs = read_scp(dumped["valid"] / "wav.scp")
    assert set(wavs) == set(codes) == set(refs)
    codec = codectk.load_codec(trained)
    for utt, path in wavs.items():
        ref_len = sf.info(refs[utt]).frames
        y, fs = sf.read(path, dtype="float32")
        assert fs == 16000 and len(y) == ref_len
        assert codes[utt].shape == (2, -(-ref_len // codec.hop_length))
        with torch.inference_mode():  # stage 6's codes decode to stage 6's waveform
            again = codec.decode(torch.from_numpy(codes[utt])[None])[0, 0, :ref_len].numpy()
        np.testing.assert_allclose(again, y, atol=2 / 32768)
    assert float((out / "bitrate").read_text()) == pytest.approx(0.8)

    scores = tmp_path / "scores"
    score.main(
        [
            "--ref_scp",
            str(dumped["valid"] / "wav.scp"),
            "--deg_scp",
            str(out / "wav.scp"),
            "--codes_scp",
            str(out / "codes.scp"),
            "--bitrate_kbps",
            "0.8",
            "--out_dir",
            str(scores / "valid"),
        ]
    )
    assert (scores / "valid" / "summary.json").exists()
    assert compare_scores.main([str(scores / "valid"), str(scores / "valid")]) == 0

    zipped = tmp_path / "packed" / "model.zip"
    pack.main(["--exp_dir", str(trained), "--out", str(zipped), "--scores_dir", str(scores)])
    from_zip = codectk.load_codec(zipped)
    for a, b in zip(codec.state_dict().values(), from_zip.state_dict().values()):
        torch.testing.assert_close(a, b)
    import zipfile

    with zipfile.ZipFile(zipped) as zf:
        readme = zf.read("README.md").decode()
    assert "Scores: valid" in readme and "mel_distance" in readme


def test_build_and_load_errors(tmp_path: Path, trained: Path):
    codec = codectk.build_codec(trained / "config.yaml")
    assert codec.sample_rate == 16000 and codec.n_codebooks == 4
    with pytest.raises(CheckpointError, match="not found; model files in"):
        codectk.load_codec(trained, checkpoint="nope.pt")
    bad = tmp_path / "bad.zip"
    import zipfile

    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.txt", "x")
    with pytest.raises(CheckpointError, match="not a codectk packed model"):
        codectk.load_codec(bad)
    # a target bitrate is rounded down to the ladder; one below the lowest is refused
    with pytest.raises(ValueError, match=r"bandwidth 0.1 kbps is below the lowest .* \[0.4, "):
        codec_inference.main(
            [
                "--model",
                str(trained),
                "--in_scp",
                "x",
                "--out_dir",
                str(tmp_path),
                "--wav_dir",
                str(tmp_path),
                "--target_bandwidth",
                "0.1",
            ]
        )
