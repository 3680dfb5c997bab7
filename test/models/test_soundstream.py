"""Tests of codectk.models.soundstream: codec interface, bitrates, training, registry."""

import math

import pytest
import torch
import yaml

from codectk.models import CODECS
from codectk.models.soundstream import SoundStream, soundstream_24khz_conf, soundstream_tiny_conf
from test.helpers import assert_version_1_conf_builds


def make_soundstream_conf(**overrides):
    return soundstream_tiny_conf(**overrides)


def seeded_wav(batch=2, length=4000, seed=0):
    """(B, 1, T) mixture of sines plus a little noise, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    freqs = 100 + 900 * torch.rand(batch, 3, 1, generator=g)
    wav = torch.sin(2 * math.pi * freqs * t).sum(1, keepdim=True) / 6
    return wav + 0.01 * torch.randn(batch, 1, length, generator=g)


@pytest.fixture(scope="module")
def trained_tiny():
    """A tiny SoundStream whose codebooks saw one training batch (k-means init)."""
    torch.manual_seed(0)
    codec = CODECS.build("soundstream", make_soundstream_conf())
    codec.train()
    with torch.no_grad():
        codec(seeded_wav(batch=4, length=8000, seed=1))
    return codec.eval()


def test_encode_decode_shapes_for_t_not_multiple_of_hop(trained_tiny):
    codec = trained_tiny
    assert (codec.hop_length, codec.frame_rate, codec.n_codebooks) == (320, 50.0, 4)
    wav = seeded_wav(length=3 * 320 + 17)
    with torch.inference_mode():
        codes = codec.encode(wav)
        codes2 = codec.encode(wav, n_quantizers=2)
        out = codec.decode(codes)
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 256
    assert torch.equal(codes2, codes[:, :2])
    assert out.shape == (2, 1, 4 * 320)


def test_decode_of_encode_equals_forward_in_eval(trained_tiny):
    wav = seeded_wav(length=2000)
    with torch.no_grad():
        out = trained_tiny(wav)
        codes = trained_tiny.encode(wav)
        rec = trained_tiny.decode(codes)
    assert out.wav.shape == wav.shape and out.n_quantizers == 4
    assert torch.equal(out.codes, codes)
    assert len(codes.unique()) > 1  # the codebooks are not trivial
    torch.testing.assert_close(rec[..., : wav.shape[-1]], out.wav, rtol=0, atol=1e-5)


def test_paper_config_bitrates():
    codec = SoundStream(**soundstream_24khz_conf())
    assert codec.hop_length == 320 and codec.frame_rate == 75.0
    assert codec.bitrate() == pytest.approx(6.0)
    assert codec.bitrate(1) == pytest.approx(0.75)
    assert codec.bandwidths == pytest.approx([0.75 * n for n in range(1, 9)])
    assert codec.n_quantizers_for_bandwidth(3.0) == 4
    with pytest.raises(ValueError, match=r"bandwidth 5.0 kbps not supported; choose one of \[0.75"):
        codec.n_quantizers_for_bandwidth(5.0)
    # the paper's 6 kbps model keeps C_enc = C_dec = 32 and 8 x 1024 codebooks
    assert sum(p.numel() for p in codec.parameters()) == 11_813_922


def test_check_codes_rejects_bad_codes(trained_tiny):
    good = torch.zeros(1, 4, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"code values must lie in \[0, 256\)"):
        trained_tiny.decode(good + 256)
    with pytest.raises(ValueError, match="codes have 5 codebooks"):
        trained_tiny.decode(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        trained_tiny.decode(good.float())
    with pytest.raises(ValueError, match=r"wav must be \(B, 1, T\)"):
        trained_tiny.encode(torch.zeros(2, 100))


def test_l1_training_reduces_the_loss():
    torch.manual_seed(0)
    codec = CODECS.build("soundstream", make_soundstream_conf(quantizer_dropout=0.0))
    codec.train()
    opt = torch.optim.Adam(codec.parameters(), lr=3e-3)
    wav = seeded_wav(batch=2, length=1920, seed=2)
    losses = []
    for _ in range(20):
        out = codec(wav)
        loss = (out.wav - wav).abs().mean()
        opt.zero_grad()
        (loss + out.commitment_loss).backward()
        opt.step()
        losses.append(loss.item())
    assert out.wav.shape == wav.shape
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_quantizer_dropout_in_training_forward():
    torch.manual_seed(0)
    codec = SoundStream(**make_soundstream_conf())
    codec.train()
    wav = seeded_wav(length=640)
    with torch.no_grad():
        used = {codec(wav).n_quantizers for _ in range(12)}
        assert codec(wav, n_quantizers=3).codes.shape == (2, 3, 2)
    assert len(used) > 1 and used <= {1, 2, 3, 4}


def test_registry_yaml_conf_and_unknown_keys():
    conf = yaml.safe_load(yaml.safe_dump(make_soundstream_conf()))  # lists, as YAML gives
    codec = CODECS.build("soundstream", conf)
    assert isinstance(codec, SoundStream) and codec.sample_rate == 16000
    assert codec.bitrate() == pytest.approx(1.6)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_q'\]"):
        CODECS.build("soundstream", {**conf, "n_q": 8})
    with pytest.raises(ValueError, match="codec_conf.encoder: ratios='8,5,4,2'"):
        CODECS.build("soundstream", {**conf, "encoder": {"ratios": "8,5,4,2"}})
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: unknown key\(s\) \['n_q'\]"):
        CODECS.build("soundstream", {**conf, "quantizer": {"n_q": 8}})
    with pytest.raises(ValueError, match=r"codec_conf.decoder: .*\['channels'\] are set by"):
        CODECS.build("soundstream", {**conf, "decoder": {"channels": 2}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bogus'\]"):
        make_soundstream_conf(bogus=1)


def test_a_section_keeps_the_other_defaults():
    """``quantizer: {n_codebooks: 2}`` changes one key of SoundStream's quantizer section;
    the decoder's own output kernel (7 against the encoder's 3) stays unless set."""
    codec = SoundStream(**make_soundstream_conf(quantizer={"n_codebooks": 2}))
    assert (codec.n_codebooks, codec.codebook_size) == (2, 256)
    assert codec.encoder.config.last_kernel_size == 3
    assert codec.decoder.config.last_kernel_size == 7
    assert codec.decoder.config.dimension == codec.encoder.config.dimension == 64
    same = SoundStream(**make_soundstream_conf(decoder={"last_kernel_size": None}))
    assert same.decoder.config.last_kernel_size == 3


# The version-1 (flat) codec_conf of soundstream_tiny_conf(), as codectk wrote it before
# the sections (e.g. into checkpoints and model files).
TINY_V1 = {
    "sample_rate": 16000,
    "channels": 1,
    "n_filters": 8,
    "dimension": 64,
    "ratios": [8, 5, 4, 2],
    "n_residual_layers": 1,
    "dilation_base": 3,
    "kernel_size": 7,
    "residual_kernel_size": 7,
    "last_kernel_size": 3,
    "decoder_last_kernel_size": 7,
    "activation": "elu",
    "causal": True,
    "norm": "weight_norm",
    "pad_mode": "reflect",
    "causal_pad_mode": "constant",
    "lstm": 0,
    "compress": 1,
    "true_skip": True,
    "n_codebooks": 4,
    "codebook_size": 256,
    "codebook_dim": None,
    "ema_decay": 0.99,
    "kmeans_init": True,
    "kmeans_iters": 10,
    "threshold_ema_dead_code": 2.0,
    "target_bandwidths": None,
    "quantizer_dropout": 1.0,
    "n_quantizers_sampling": "uniform",
    "quantizer_dropout_coin": "always",
    "detach_residual": False,
    "ema_init": "weighted",
    "dead_code": "reset",
}


def test_a_version_1_config_builds_the_same_codec():
    conf = assert_version_1_conf_builds("soundstream", TINY_V1, make_soundstream_conf())
    assert conf["quantizer"]["decay"] == 0.99
    assert conf["decoder"] == {"last_kernel_size": 7}
