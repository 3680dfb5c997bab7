"""AudioDec's entry points: noisy/clean pairs (make_noisy) at exact SNRs and the paired
batches they give, and `codectk stream` equal to whole-file decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codectk.bin import make_noisy, stream
from codectk.bin.cli import main as cli_main
from codectk.data.dataset import RandomCropDataset, UtteranceDataset
from codectk.errors import CodectkError
from codectk.io.datadir import read_scp
from codectk.io.modelfile import model_file, save_atomic
from test.single_thread import one_torch_thread  # noqa: F401


def test_mix_at_snr_exact():
    rng = np.random.default_rng(0)
    x, n = rng.standard_normal(4000) * 0.1, rng.standard_normal(4000)
    for snr in (-5.0, 0.0, 12.5):
        y, c, _ = make_noisy.mix_at_snr(x, n, snr)
        got = 10 * np.log10(
            np.sum(c.astype(np.float64) ** 2) / np.sum((y - c).astype(np.float64) ** 2)
        )
        assert got == pytest.approx(snr, abs=1e-3)
        assert np.abs(y).max() <= 0.99 + 1e-6
    with pytest.raises(ValueError, match="silent"):
        make_noisy.mix_at_snr(x, np.zeros(4000), 0.0)


def test_make_noisy_datadir_pairs(tmp_path: Path, dumped):
    # real noise is not bundled: the interfering talkers are the validation utterances
    out = tmp_path / "train_noisy"
    make_noisy.main(
        [
            "--clean", str(dumped["train"]), "--noise_scp", str(dumped["valid"] / "wav.scp"),
            "--snrs", "0 5 10", "--out", str(out), "--seed", "3",
        ]
    )  # fmt: skip
    noisy, clean, snrs = (
        read_scp(out / "wav.scp"),
        read_scp(out / "clean.scp"),
        read_scp(out / "utt2snr"),
    )
    assert set(noisy) == set(clean) == set(read_scp(dumped["train"] / "wav.scp"))
    for utt in noisy:
        y, fs = sf.read(noisy[utt], dtype="float64")
        c, _ = sf.read(clean[utt], dtype="float64")
        assert fs == 16000 and len(y) == len(c)
        snr = float(snrs[utt].split()[0])
        assert snr in (0, 5, 10)
        measured = 10 * np.log10(np.sum(c**2) / np.sum((y - c) ** 2))
        assert measured == pytest.approx(snr, abs=0.05)  # 16-bit rounding only
    batch = RandomCropDataset(out, 16000, 1600, 3, seed=1)[5]
    assert batch.target is not None and batch.target.shape == batch.wav.shape == (3, 1, 1600)
    assert not torch.equal(batch.target, batch.wav)
    assert RandomCropDataset(dumped["train"], 16000, 1600, 3, seed=1)[5].target is None
    item = UtteranceDataset(out, 16000)[0]
    assert item.target.shape == item.wav.shape
    (out / "clean.scp").write_text("nobody /x.wav\n")
    with pytest.raises(Exception, match="no clean target"):
        UtteranceDataset(out, 16000)


def _tiny_symad_exp(tmp_path: Path) -> Path:
    from codectk.config import build_train_config
    from codectk.models.audiodec import SymAD

    conf = {
        "codec": "symad",
        "codec_conf": {
            "sample_rate": 16000, "code_dim": 8,
            "encoder": {"channels": 4, "strides": [2, 4, 4, 5]},
            "decoder": {"channels": 4, "strides": [5, 4, 4, 2]},
            "quantizer": {"n_codebooks": 2, "codebook_size": 16},
        },
    }  # fmt: skip
    torch.manual_seed(0)
    codec = SymAD(**conf["codec_conf"])
    codec.train()
    with torch.no_grad():
        codec(torch.randn(2, 1, 3200) * 0.1)
    exp = tmp_path / "exp"
    cfg = build_train_config(conf).to_dict()
    save_atomic(model_file(cfg, codec.state_dict(), 1, {}), exp / "valid.mel_distance.ave.pt")
    return exp


def test_stream_command_reproduces_whole_file_decoding(tmp_path: Path, flacs):
    from codectk.inference import load_codec

    exp = _tiny_symad_exp(tmp_path)
    speech, fs = sf.read(flacs[0], dtype="float32")
    src = tmp_path / "speech.wav"
    sf.write(src, speech[: 2 * fs + 77], fs, subtype="FLOAT")  # 2 s + a partial chunk
    out = tmp_path / "streamed.wav"
    assert cli_main(["stream", str(src), str(out), "--model", str(exp), "--chunk_ms", "12.5"]) == 0
    x, fs = sf.read(src, dtype="float32")
    y, fs2 = sf.read(out, dtype="float32")
    assert fs2 == fs and len(y) == len(x)
    codec = load_codec(exp)
    with torch.inference_mode():
        ref = codec.decode(codec.encode(torch.from_numpy(x)[None, None]))[0, 0, : len(x)]
    ref16 = np.clip(ref.numpy(), -1, 1)
    assert np.abs(y - ref16).max() <= 2 / 32768  # equal up to the 16-bit WAV rounding
    out2 = tmp_path / "module.wav"
    stream.main([str(src), str(out2), "--model", str(exp), "--engine", "module"])
    assert np.abs(sf.read(out2, dtype="float32")[0] - y).max() <= 2 / 32768
    with pytest.raises(CodectkError, match="whole number of samples"):
        stream.chunk_samples(0.01, 16000)
