"""Tests of codectk.models.encodec: paper configs, bandwidths, codec interface, training."""

import math
from pathlib import Path

import pytest
import torch

import codectk
from codectk.config import build_train_config, load_yaml
from codectk.models import CODECS
from codectk.models.encodec import EnCodec, encodec_tiny_conf
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.single_thread import one_torch_thread  # noqa: F401

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/encodec_16k_tiny.yaml"


def seeded_wav(batch=2, length=4000, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    freqs = 100 + 900 * torch.rand(batch, channels, 3, 1, generator=g)
    wav = torch.sin(2 * math.pi * freqs * t).sum(2) / 6  # (B, C, 3, T) -> (B, C, T)
    return wav + 0.01 * torch.randn(batch, channels, length, generator=g)


@pytest.fixture(scope="module")
def trained_tiny():
    """A tiny EnCodec whose codebooks saw one training batch (k-means init)."""
    torch.manual_seed(0)
    codec = CODECS.build("encodec", encodec_tiny_conf(quantizer={"kmeans_iters": 2}))
    codec.train()
    with torch.no_grad():
        codec(seeded_wav(batch=4, length=8000, seed=1), n_quantizers=4)
    return codec.eval()


def test_paper_24khz_config_parameters_hop_and_bitrates():
    codec = codectk.build_codec(REPO / "conf/encodec_24k_24kbps.yaml")
    assert isinstance(codec, EnCodec)
    # as the authors' EncodecModel counts it: encoder + decoder (codebooks are buffers)
    assert sum(p.numel() for p in codec.parameters()) == 14_851_810
    assert (
        sum(b.numel() for n, b in codec.named_buffers() if n.endswith(".embed")) == 32 * 1024 * 128
    )
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (24000, 320, 75.0)
    assert (codec.n_codebooks, codec.codebook_size) == (32, 1024)
    assert codec.bitrate() == pytest.approx(24.0) and codec.bitrate(1) == pytest.approx(0.75)
    n_q = [codec.n_quantizers_for_bandwidth(b) for b in (1.5, 3.0, 6.0, 12.0, 24.0)]
    assert n_q == [2, 4, 8, 16, 32] == codec.target_n_quantizers
    with pytest.raises(ValueError, match=r"bandwidth 5.0 kbps not supported"):
        codec.n_quantizers_for_bandwidth(5.0)


def test_paper_48khz_config_is_non_causal_group_norm():
    codec = codectk.build_codec(REPO / "conf/encodec_48k_24kbps.yaml")
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (48000, 320, 150.0)
    assert codec.n_codebooks == 16 and codec.bitrate() == pytest.approx(24.0)
    assert codec.target_n_quantizers == [2, 4, 8, 16]
    norms = [m for m in codec.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == 1 for m in norms)
    assert not any("parametrizations" in n for n, _ in codec.named_parameters())
    with pytest.raises(ValueError, match="'time_group_norm' is not causal"):
        EnCodec(**encodec_tiny_conf(encoder={"norm": "time_group_norm", "causal": True}))


def test_encode_decode_shapes_and_bandwidths(trained_tiny):
    codec = trained_tiny
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, 50.0, 4)
    wav = seeded_wav(length=3 * 320 + 17)
    n_q = codec.n_quantizers_for_bandwidth(0.8)
    with torch.inference_mode():
        codes = codec.encode(wav)
        codes2 = codec.encode(wav, n_quantizers=n_q)
        out = codec.decode(codes)
        out2 = codec.decode(codes2)
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long and n_q == 2
    assert 0 <= int(codes.min()) and int(codes.max()) < 256
    assert torch.equal(codes2, codes[:, :2])
    assert out.shape == out2.shape == (2, 1, 4 * 320)


def test_decode_of_encode_equals_forward_in_eval(trained_tiny):
    wav = seeded_wav(length=2000)
    with torch.no_grad():
        out = trained_tiny(wav)
        rec = trained_tiny.decode(trained_tiny.encode(wav))
    assert out.wav.shape == wav.shape and out.n_quantizers == 4
    assert len(out.codes.unique()) > 1
    torch.testing.assert_close(rec[..., : wav.shape[-1]], out.wav, rtol=0, atol=1e-5)


def test_variable_bandwidth_training_and_stereo():
    torch.manual_seed(0)
    codec = EnCodec(
        **encodec_tiny_conf(quantizer={"kmeans_iters": 1}, target_bandwidths=[0.8, 1.6])
    ).train()
    assert {codec.training_n_quantizers(torch.device("cpu")) for _ in range(20)} == {2, 4}
    torch.manual_seed(1)
    expected = codec.training_n_quantizers(torch.device("cpu"))
    torch.manual_seed(1)
    with torch.no_grad():
        out = codec(seeded_wav(length=640))
    assert out.n_quantizers == expected and out.codes.shape == (2, expected, 2)
    non_causal = {"causal": False, "norm": "time_group_norm"}
    stereo = EnCodec(**encodec_tiny_conf(channels=2, encoder=non_causal)).eval()
    wav = seeded_wav(length=700, channels=2)
    with torch.no_grad():
        assert stereo(wav).wav.shape == (2, 2, 700)
        assert stereo.decode(stereo.encode(wav)).shape == (2, 2, 3 * 320)
    with pytest.raises(ValueError, match=r"wav must be \(B, 2, T\)"):
        stereo.encode(seeded_wav())
    with pytest.raises(ValueError, match=r"bandwidth 1.0 kbps not supported"):
        EnCodec(**encodec_tiny_conf(target_bandwidths=[1.0]))


def test_uniform_n_quantizers_sampling_covers_every_count():
    torch.manual_seed(0)
    codec = EnCodec(
        **encodec_tiny_conf(quantizer={"kmeans_iters": 1}, n_quantizers_sampling="uniform")
    )
    assert {codec.training_n_quantizers(torch.device("cpu")) for _ in range(40)} == {1, 2, 3, 4}
    with pytest.raises(ValueError, match=r"n_quantizers_sampling 'x' not supported"):
        EnCodec(**encodec_tiny_conf(n_quantizers_sampling="x"))


def test_one_generator_and_one_discriminator_step(tmp_path: Path, dumped):
    conf = load_yaml(TINY_YAML)
    conf.update(batch_size=2, segment_duration=0.2, discriminator_start_step=0)
    conf["codec_conf"]["quantizer"]["kmeans_iters"] = 2
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    g0 = [p.detach().clone() for p in t.codec.parameters()]
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    t.step = 1
    parts = t._train_step(t.train_set[1])
    for key in ("g_time", "g_freq", "g_adv", "g_feat", "g_commit", "g_total", "d_total"):
        assert math.isfinite(parts[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.codec.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.disc.parameters()))
    assert int(t.loss.balancer.ema_weight.gt(0).sum()) == 4  # time, freq, adv, feat
