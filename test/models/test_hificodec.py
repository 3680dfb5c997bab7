"""Tests of codectk.models.hificodec: codec interface, GRVQ bitrates, paper size, training."""

import math
from pathlib import Path

import pytest
import torch
import yaml

import codectk
from codectk.config import build_train_config, load_yaml
from codectk.models import CODECS
from codectk.models.hificodec import HiFiCodec, hificodec_tiny_conf
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import assert_version_1_conf_builds
from test.models.test_soundstream import seeded_wav

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/hificodec_16k_tiny.yaml"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP oversubscription on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def codec_conf(name: str) -> dict:
    return load_yaml(REPO / "conf" / f"{name}.yaml")["codec_conf"]


def make_hificodec_conf(**overrides):
    return hificodec_tiny_conf(**overrides)


@pytest.fixture(scope="module")
def trained_tiny():
    """A tiny HiFi-Codec whose codebooks saw one training batch (k-means init)."""
    torch.manual_seed(0)
    codec = CODECS.build("hificodec", make_hificodec_conf())
    codec.train()
    with torch.no_grad():
        codec(seeded_wav(batch=4, length=8000, seed=1))
    return codec.eval()


def test_encode_decode_shapes_and_bandwidths(trained_tiny):
    codec = trained_tiny
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, 50.0, 4)
    assert codec.bandwidths == pytest.approx([0.6, 1.2])  # one or two stages per group
    assert codec.n_quantizers_for_bandwidth(0.6) == 2
    with pytest.raises(ValueError, match=r"bandwidth 0.9 kbps not supported; choose one of \[0.6"):
        codec.n_quantizers_for_bandwidth(0.9)
    wav = seeded_wav(length=3 * 320 + 17)
    with torch.inference_mode():
        codes = codec.encode(wav)
        half = codec.encode(wav, n_quantizers=2)
        out = codec.decode(codes)
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long
    assert torch.equal(half, codes[:, :2])
    assert out.shape == (2, 1, 4 * 320) and out.abs().max() <= 1  # tanh output
    with pytest.raises(ValueError, match=r"n_quantizers 3 not supported; choose one of \[2, 4\]"):
        codec.decode(codes[:, :3])


def test_decode_of_encode_equals_forward_in_eval(trained_tiny):
    wav = seeded_wav(length=2000)
    with torch.no_grad():
        out = trained_tiny(wav)
        rec = trained_tiny.decode(trained_tiny.encode(wav))
    assert out.wav.shape == wav.shape and out.n_quantizers == 4
    assert len(out.codes.unique()) > 1
    torch.testing.assert_close(rec[..., : wav.shape[-1]], out.wav, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "fs", "frame_rate", "kbps"),
    [("hificodec_16k_320d", 16000, 50.0, 2.0), ("hificodec_24k_320d", 24000, 75.0, 3.0)],
)
def test_paper_configs(name, fs, frame_rate, kbps):
    codec = codectk.build_codec(REPO / "conf" / f"{name}.yaml")
    assert isinstance(codec, HiFiCodec) and codec.sample_rate == fs
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, frame_rate, 4)
    assert codec.codebook_size == 1024 and codec.quantizer.n_groups == 2
    assert codec.bitrate() == pytest.approx(kbps)
    assert codec.bandwidths == pytest.approx([kbps / 2, kbps])
    # AcademiCodec's Encoder (47,228,960) + Quantizer (4 x 1024 x 256 gradient-trained
    # codebooks) + Generator (15,353,346)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(codec.encoder), count(codec.decoder)) == (47_228_960, 15_353_346)
    assert count(codec.quantizer) == 1_048_576
    assert count(codec) == 63_630_882
    # with EMA codebooks the codebooks are buffers
    conf = codec_conf(name)
    ema = CODECS.build(
        "hificodec", {**conf, "quantizer": {**conf["quantizer"], "codebook_update": "ema"}}
    )
    assert count(ema) == 62_582_306
    assert sum(b.numel() for n, b in ema.named_buffers() if n.endswith(".embed")) == 1_048_576


def test_one_generator_and_one_discriminator_step(tmp_path: Path, dumped):
    conf = load_yaml(TINY_YAML)
    conf.update(batch_size=2, segment_duration=0.2, discriminator_start_step=0)
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    assert sorted(t.disc.discriminators) == ["hifigan_msd", "mpd", "ms_stft"]
    g0 = [p.detach().clone() for p in t.codec.parameters()]
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    parts = t._train_step(t.train_set[1])
    for key in (
        "g_mel",
        "g_adv",
        "g_feat",
        "g_commit",
        "g_codebook",
        "g_total",
        "d_real",
        "d_fake",
    ):
        assert math.isfinite(parts[key]), key
    assert parts["n_quantizers"] == 4
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.codec.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.disc.parameters()))


def test_registry_yaml_conf_and_bad_layouts():
    conf = yaml.safe_load(yaml.safe_dump(make_hificodec_conf()))  # lists, as YAML gives
    codec = CODECS.build("hificodec", conf)
    assert codec.bitrate() == pytest.approx(1.2)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_code_groups'\]"):
        CODECS.build("hificodec", {**conf, "n_code_groups": 2})
    with pytest.raises(ValueError, match="upsample kernel 15 for rate 8 must be >= 8 with k - u"):
        HiFiCodec(**make_hificodec_conf(encoder=dict(upsample_kernel_sizes=[15, 11, 8, 4])))
    with pytest.raises(ValueError, match="resblock '3' not supported"):
        HiFiCodec(**make_hificodec_conf(encoder=dict(resblock="3")))
    with pytest.raises(
        ValueError, match=r"codec_conf.quantizer: unknown key\(s\) \['n_q'\]; valid"
    ):
        CODECS.build("hificodec", {**conf, "quantizer": {"n_q": 4}})
    with pytest.raises(ValueError, match=r"codec_conf.encoder: \['dimension'\] are set by codectk"):
        CODECS.build("hificodec", {**conf, "encoder": {"dimension": 16}})
    with pytest.raises(
        ValueError, match=r"codec_conf.decoder: upsample_rates \[8, 5, 4\] must mul"
    ):
        HiFiCodec(
            **make_hificodec_conf(
                decoder=dict(upsample_rates=[8, 5, 4], upsample_kernel_sizes=[16, 11, 8])
            )
        )
    with pytest.raises(ValueError, match=r"\['kmeans_iters'\] apply to codebook_update 'ema' only"):
        HiFiCodec(**make_hificodec_conf(quantizer=dict(kmeans_iters=5)))
    with pytest.raises(ValueError, match=r"wav must be \(B, 1, T\)"):
        codec.encode(torch.zeros(2, 100))


def test_decoder_output_slope():
    """AcademiCodec's Generator uses LeakyReLU(0.1) before its output conv (HiFi-GAN's
    own: 0.01, the default kept for other users of HiFiGANGenerator)."""
    from codectk.nn.hifigan import HiFiGANGenerator

    layout = dict(upsample_rates=[2], upsample_kernel_sizes=[4], resblock="2",
                  resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]])  # fmt: skip
    assert HiFiGANGenerator(4, 8, **layout).output_negative_slope == 0.01
    torch.manual_seed(0)
    a = HiFiGANGenerator(4, 8, **layout)
    torch.manual_seed(0)
    b = HiFiGANGenerator(4, 8, output_negative_slope=0.1, **layout)
    z = torch.randn(1, 4, 5)
    with torch.no_grad():
        assert not torch.allclose(a(z), b(z))
    assert CODECS.build("hificodec", make_hificodec_conf()).decoder.output_negative_slope == 0.1


def test_quantizer_section_ema_defaults():
    """``codebook_update: ema`` fills the family's EMA defaults for the options left unset."""
    codec = HiFiCodec(**make_hificodec_conf(quantizer=dict(codebook_update="ema", decay=0.9)))
    first = codec.quantizer.groups[0].layers[0].codebook
    assert (first.decay, first.kmeans_iters, first.threshold_ema_dead_code) == (0.9, 50, 2.0)
    assert make_hificodec_conf(quantizer=dict(n_groups=4))["quantizer"] == dict(
        n_groups=4, codebook_size=64, codebook_update="gradient"
    )


# HiFi-Codec's tiny preset as version 1 (flat codec_conf, before config_version 2) wrote it
TINY_V1 = {
    "sample_rate": 16000,
    "n_filters": 4,
    "dimension": 32,
    "upsample_rates": [8, 5, 4, 2],
    "upsample_kernel_sizes": [16, 11, 8, 4],
    "upsample_initial_channel": 64,
    "output_negative_slope": 0.1,
    "resblock": "2",
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "n_groups": 2,
    "n_codebooks_per_group": 2,
    "codebook_size": 64,
    "codebook_update": "gradient",
    "ema_decay": None,
    "kmeans_init": None,
    "kmeans_iters": None,
    "threshold_ema_dead_code": None,
    "quantizer_dropout": 0.0,
}


def test_version_1_config_builds_the_same_codec():
    """A flat (version-1) codec_conf is read through the key map into the sections."""
    conf = assert_version_1_conf_builds("hificodec", TINY_V1, make_hificodec_conf())
    assert set(conf) == {
        "sample_rate",
        "dimension",
        "encoder",
        "decoder",
        "quantizer",
        "quantizer_dropout",
    }
