"""Tests of codectk.models.freqcodec: STFT domains, structured dropout, paper size, training."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

import codectk
from codectk.config import build_train_config, load_train_config, load_yaml
from codectk.models import CODECS
from codectk.models.freqcodec import DOMAINS, FreqCodec, freqcodec_tiny_conf
from codectk.nn.seanet2d import SEANet2dEncoder
from codectk.nn.stft import SameSTFT
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import assert_version_1_conf_builds
from test.models.test_soundstream import seeded_wav

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/freqcodec_16k_tiny.yaml"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP oversubscription on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_freqcodec_conf(**overrides):
    return freqcodec_tiny_conf(**overrides)


@pytest.fixture(scope="module")
def trained_tiny():
    """A tiny FreqCodec whose codebooks saw one training batch (k-means init)."""
    torch.manual_seed(0)
    codec = CODECS.build("freqcodec", make_freqcodec_conf())
    codec.train()
    with torch.no_grad():
        codec(seeded_wav(batch=4, length=8000, seed=1), n_quantizers=4)
    return codec.eval()


def test_same_stft_is_exactly_invertible():
    stft = SameSTFT(512, 160)
    wav = seeded_wav(batch=3, length=1600)[:, 0]
    spec = stft.stft(wav)
    assert spec.shape == (3, 257, 10) and spec.is_complex()
    torch.testing.assert_close(stft.istft(spec), wav, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="T a multiple of 160"):
        stft.stft(wav[:, :1000])


@pytest.mark.parametrize("mode", ["mag_phase", "mag_angle"])
def test_domain_features_and_their_inverse(mode):
    spec = SameSTFT(512, 160).stft(seeded_wav(length=960)[:, 0])  # (B, N, M)
    domain = DOMAINS[mode]
    feats = domain.analyse(spec)
    assert feats.shape == (2, domain.channels, 257, 6)
    mag = spec.abs().clamp(min=1e-6)
    torch.testing.assert_close(feats[:, 0], mag.log())  # log-magnitude channel
    # the output parametrisation reproduces the spectrum from its exact pre-activations
    raw_mag = mag + torch.log(-torch.expm1(-mag))  # softplus^-1
    if mode == "mag_phase":
        out = torch.stack([raw_mag, feats[:, 1], feats[:, 2]], dim=1)
    else:
        out = torch.stack([raw_mag, torch.asin(spec.angle() / math.pi)], dim=1)
    torch.testing.assert_close(F.softplus(raw_mag), mag)
    torch.testing.assert_close(domain.synthesise(out), spec * (mag > 1e-6), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("mode", ["mag_phase", "mag_angle"])
def test_encode_decode_shapes(trained_tiny, mode):
    codec = (
        trained_tiny
        if mode == "mag_phase"
        else FreqCodec(**make_freqcodec_conf(input_mode=mode)).eval()
    )
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, 50.0, 4)
    wav = seeded_wav(length=3 * 320 + 17)
    with torch.inference_mode():
        codes = codec.encode(wav)
        two = codec.encode(wav, n_quantizers=2)
        out = codec.decode(codes)
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long
    assert torch.equal(two, codes[:, :2])
    assert out.shape == (2, 1, 4 * 320) and torch.isfinite(out).all()


def test_decode_of_encode_equals_forward_in_eval(trained_tiny):
    wav = seeded_wav(length=2000)
    with torch.no_grad():
        out = trained_tiny(wav)
        rec = trained_tiny.decode(trained_tiny.encode(wav))
    assert out.wav.shape == wav.shape and out.n_quantizers == 4
    assert len(out.codes.unique()) > 1
    torch.testing.assert_close(rec[..., : wav.shape[-1]], out.wav, rtol=0, atol=1e-5)


def test_structured_quantizer_dropout():
    torch.manual_seed(0)
    codec = FreqCodec(**make_freqcodec_conf())
    codec.train()
    wav = seeded_wav(length=640)
    with torch.no_grad():
        used = {codec(wav).n_quantizers for _ in range(20)}
        assert codec(wav, n_quantizers=3).codes.shape == (2, 3, 2)
        assert used == {1, 2, 4}  # the structured set, never 3
        codec.eval()
        assert codec(wav).n_quantizers == 4
    with pytest.raises(ValueError, match=r"quantizer_dropout_choices \[1, 8\] must lie in 1..n_"):
        FreqCodec(**make_freqcodec_conf(quantizer_dropout_choices=[1, 8]))


@pytest.mark.parametrize(("mode", "params"), [("mag_phase", 16_222_633), ("mag_angle", 16_219_494)])
def test_paper_config(mode, params):
    path = REPO / "conf/freqcodec_16k_16kbps.yaml"
    if mode == "mag_phase":
        codec = codectk.build_codec(path)  # the published config as written
    else:
        config = load_train_config(path, [f"--codec_conf.input_mode={mode}"])
        codec = CODECS.build(config.codec, config.codec_conf)
    assert isinstance(codec, FreqCodec) and codec.sample_rate == 16000
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, 50.0, 32)
    assert codec.codebook_size == 1024 and codec.bitrate() == pytest.approx(16.0)
    assert codec.quantizer_dropout_choices == [1, 2, 4, 8, 16, 32]
    kbps = [codec.bitrate(n) for n in codec.quantizer_dropout_choices]
    assert kbps == pytest.approx([0.5, 1, 2, 4, 8, 16])
    # a rebuild of FunCodec's SEANetEncoder2d + SEANetDecoder2d with these settings
    assert sum(p.numel() for p in codec.parameters()) == params


def test_one_generator_and_one_discriminator_step(tmp_path: Path, dumped):
    conf = load_yaml(TINY_YAML)
    conf.update(batch_size=2, segment_duration=0.2, discriminator_start_step=0)
    conf["codec_conf"]["quantizer"]["kmeans_iters"] = 2
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    g0 = [p.detach().clone() for p in t.codec.parameters()]
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    parts = t._train_step(t.train_set[1])
    for key in ("g_mel", "g_time", "g_adv", "g_feat", "g_commit", "g_total", "d_total"):
        assert math.isfinite(parts[key]), key
    assert parts["n_quantizers"] in (1, 2, 4)
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.codec.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.disc.parameters()))


def test_registry_yaml_conf_and_errors():
    conf = yaml.safe_load(yaml.safe_dump(make_freqcodec_conf()))  # lists, as YAML gives
    codec = CODECS.build("freqcodec", conf)
    assert codec.bitrate() == pytest.approx(1.2)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['codec_domain'\]"):
        CODECS.build("freqcodec", {**conf, "codec_domain": "mag_phase"})
    with pytest.raises(ValueError, match="input_mode 'stft' not supported; choose one of"):
        FreqCodec(**make_freqcodec_conf(input_mode="stft"))
    with pytest.raises(ValueError, match=r"reduce 257 bins to 4, not 1"):
        SEANet2dEncoder(3, n_freq=257, dimension=8, n_filters=4, ratios=[[4, 1], [4, 2], [4, 1]])
    with pytest.raises(ValueError, match="norm 'batch_norm' not supported"):
        FreqCodec(**make_freqcodec_conf(encoder=dict(norm="batch_norm")))
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: unknown key\(s\) \['ema_decay'\]"):
        CODECS.build("freqcodec", {**conf, "quantizer": {"ema_decay": 0.9}})
    with pytest.raises(ValueError, match=r"codec_conf.encoder: \['n_freq'\] are set by codectk"):
        CODECS.build("freqcodec", {**conf, "encoder": {"n_freq": 129}})
    with pytest.raises(ValueError, match=r"codec_conf.decoder: unknown key\(s\) \['filters'\]"):
        CODECS.build("freqcodec", {**conf, "decoder": {"filters": 8}})


def test_sections_keep_their_other_defaults():
    """A section sets only what it names; the decoder section is the decoder's differences."""
    conf = make_freqcodec_conf(quantizer=dict(n_codebooks=2), quantizer_dropout_choices=[1, 2])
    assert conf["quantizer"] == dict(
        n_codebooks=2,
        codebook_size=64,
        kmeans_iters=10,
        ema_init="unweighted",
        dead_code="before_ema",
    )
    codebook = FreqCodec(**conf).quantizer.layers[0].codebook
    assert (codebook.decay, codebook.kmeans_iters, codebook.ema_init) == (0.99, 10, "unweighted")
    assert conf["encoder"] == dict(n_filters=4, lstm=0, ratios=[[4, 1], [4, 1], [4, 2], [4, 1]])
    codec = FreqCodec(**make_freqcodec_conf(decoder=dict(last_kernel_size=3)))
    assert codec.encoder.config.last_kernel_size == 7 and codec.encoder.config.n_filters == 4
    assert codec.decoder.config.last_kernel_size == 3 and codec.decoder.config.n_filters == 4
    with pytest.raises(ValueError, match=r"codec_conf.decoder: ratios .* keep the encoder's hop"):
        FreqCodec(**make_freqcodec_conf(decoder=dict(ratios=[[4, 1], [4, 1], [4, 1], [4, 1]])))


# FreqCodec's tiny preset as version 1 (flat codec_conf, before config_version 2) wrote it
TINY_V1 = {
    "sample_rate": 16000,
    "n_fft": 512,
    "stft_hop_length": 160,
    "input_mode": "mag_phase",
    "n_filters": 4,
    "dimension": 32,
    "ratios": [[4, 1], [4, 1], [4, 2], [4, 1]],
    "n_residual_layers": 1,
    "dilation_base": 1,
    "kernel_size": 7,
    "residual_kernel_size": 3,
    "last_kernel_size": 7,
    "activation": "elu",
    "norm": "time_group_norm",
    "lstm": 0,
    "compress": 2,
    "true_skip": False,
    "conv_group_ratio": -1,
    "tr_conv_group_ratio": -1,
    "n_codebooks": 4,
    "codebook_size": 64,
    "codebook_dim": None,
    "ema_decay": 0.99,
    "kmeans_init": True,
    "kmeans_iters": 10,
    "threshold_ema_dead_code": 2.0,
    "ema_init": "unweighted",
    "dead_code": "before_ema",
    "quantizer_dropout_choices": [1, 2, 4],
    "commitment_average": "all",
}


def test_version_1_config_builds_the_same_codec():
    """A flat (version-1) codec_conf is read through the key map into the sections."""
    conf = assert_version_1_conf_builds("freqcodec", TINY_V1, make_freqcodec_conf())
    assert conf["encoder"]["n_filters"] == 4
    assert conf["quantizer"]["decay"] == 0.99


def test_commitment_average_over_all_codebooks():
    """FunCodec averages the commitment over all K stages, dropped ones 0 (``all``)."""
    wav = seeded_wav(length=640)
    outs = {}
    for mode in ("used", "all"):
        torch.manual_seed(0)
        codec = FreqCodec(**make_freqcodec_conf(commitment_average=mode)).train()
        with torch.no_grad():
            outs[mode] = codec(wav, n_quantizers=2)
    torch.testing.assert_close(outs["all"].commitment_loss, outs["used"].commitment_loss * 2 / 4)
    assert torch.equal(outs["all"].wav, outs["used"].wav)
    with pytest.raises(ValueError, match="commitment_average 'sum' not supported"):
        FreqCodec(**make_freqcodec_conf(commitment_average="sum"))
