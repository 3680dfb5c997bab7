"""Stage 9 (upload folder, upload call) and stage 10 (tokens round trip) entry points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import codectk
from codectk import hub
from codectk.bin import codec_inference, extract_tokens, pack, train, upload
from codectk.io.codes import read_codes
from codectk.io.datadir import read_scp
from codectk.tokens import decode_tokens, load_tokens
from test.helpers import write_conf
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def exp(tmp_path_factory, dumped) -> Path:
    """An untrained tiny SoundStream experiment (training with 0 steps), packed."""
    root = tmp_path_factory.mktemp("exp")
    out = root / "codec_tiny"
    args = ["--config", str(write_conf(root / "conf.yaml")), "--train_data", str(dumped["train"])]
    args += ["--valid_data", str(dumped["valid"]), "--output_dir", str(out), "--max_steps", "0"]
    assert train.main(args) == 0
    assert pack.main(["--exp_dir", str(out), "--out", str(out / "packed/codec_tiny.zip")]) == 0
    return out


def test_tokens_round_trip_stage6(exp: Path, dumped, tmp_path: Path):
    data = dumped["valid"]
    dec = tmp_path / "decode"
    args = ["--model", str(exp), "--in_scp", str(data / "wav.scp"), "--out_dir", str(dec)]
    assert (
        codec_inference.main([*args, "--wav_dir", str(dec / "wav"), "--target_bandwidth", "0.8"])
        == 0
    )
    tok = tmp_path / "tokens"
    args = ["--model", str(exp), "--data", str(data), "--out_dir", str(tok)]
    assert extract_tokens.main([*args, "--npy", "true", "--target_bandwidth", "0.8"]) == 0

    tokens = load_tokens(tok)
    assert tokens.n_codebooks == 2 and tokens.frame_rate == float((tok / "frame_rate").read_text())
    stage6 = read_codes(dec / "codes.scp")
    assert set(tokens.codes) == set(stage6) == set(read_scp(data / "wav.scp"))
    codec = codectk.load_codec(exp)
    wavs = decode_tokens(codec, tokens.codes)
    for utt, path in read_scp(dec / "wav.scp").items():
        np.testing.assert_array_equal(tokens.codes[utt], stage6[utt])
        y, fs = sf.read(path, dtype="float32")  # stage 6's waveform (16-bit)
        assert fs == tokens.sample_rate
        np.testing.assert_allclose(wavs[utt][: y.size], y, atol=2 / 32768)
    npy = load_tokens(tok, "npy")
    for utt, c in tokens.codes.items():
        np.testing.assert_array_equal(npy.codes[utt], c)
    # Token list and flat ids: codebook k, code c -> k * codebook_size + c.
    lines = (tok / "tokens.txt").read_text().splitlines()
    assert len(lines) == 2 * codec.codebook_size == len(tokens.tokens)
    assert lines[codec.codebook_size + 3] == f"c1_3 {codec.codebook_size + 3}"
    utt = next(iter(tokens.codes))
    flat = tokens.flat(utt)
    c = tokens.codes[utt]
    assert flat.shape == (c.size,)
    assert flat[0] == c[0, 0] and flat[1] == codec.codebook_size + c[1, 0] and flat[2] == c[0, 1]
    with pytest.raises(ValueError, match="fmt 'txt' not supported"):
        load_tokens(tok, "txt")


def _upload_args(exp: Path, dumped, out: Path) -> list[str]:
    return [
        "--exp_dir",
        str(exp),
        "--packed",
        str(exp / "packed/codec_tiny.zip"),
        "--repo_id",
        "me/tiny",
        "--out_dir",
        str(out),
        "--train_data",
        str(dumped["train"]),
        "--valid_data",
        str(dumped["valid"]),
    ]


def test_upload_folder_without_token(exp: Path, dumped, tmp_path: Path, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(kw))
    out = tmp_path / "hf_repo"
    out.mkdir()
    (out / "precious.txt").write_text("not ours")
    with pytest.raises(hub.UploadError, match="not written by stage 9"):
        upload.main(_upload_args(exp, dumped, out))
    (out / "codectk_upload.json").write_text("{}")  # an older stage-9 folder: replaced
    (out / "stale.txt").write_text("from an older run")
    assert upload.main(_upload_args(exp, dumped, out)) == 0
    assert calls == [] and "not uploaded: HF_TOKEN is not set" in capsys.readouterr().err
    assert not (out / "stale.txt").exists()
    assert (out / "codec_tiny.zip").read_bytes() == (exp / "packed/codec_tiny.zip").read_bytes()
    assert codectk.load_codec(out / "codec_tiny.zip").sample_rate == 16000
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "codectk" and "soundstream" in front["tags"]
    assert "| train | " in card and "| 6 | 6 |" in card  # 6 utterances of 6 speakers
    assert 'hf_hub_download("me/tiny", "codec_tiny.zip")' in card
    assert yaml.safe_load((out / "config.yaml").read_text())["codec"] == "soundstream"
    for plot in (p for p in card.split("(") if p.startswith("plots/")):
        assert (out / plot.split(")")[0]).is_file()


def test_upload_calls_hub(exp: Path, dumped, tmp_path: Path, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    calls = []
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)),
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw))
    )
    out = tmp_path / "hf_repo"
    assert upload.main(_upload_args(exp, dumped, out)) == 0
    assert calls[0] == ("create", "me/tiny", {"private": False, "exist_ok": True})
    assert calls[1][0] == "upload"
    assert calls[1][1]["repo_id"] == "me/tiny" and calls[1][1]["folder_path"] == str(out)

    def offline(self, **kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", offline)
    assert upload.main(_upload_args(exp, dumped, out)) == upload.EXIT_UPLOAD_FAILED
    assert (out / "README.md").is_file()
