"""Tests of codectk.models.dac: paper configs, codec interface, training steps."""

import math
from pathlib import Path

import pytest
import torch

import codectk
from codectk.config import build_train_config, load_yaml
from codectk.models import CODECS
from codectk.models.dac import DAC, dac_tiny_conf
from codectk.nn.snake import Snake1d
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import assert_version_1_conf_builds
from test.single_thread import one_torch_thread  # noqa: F401

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/dac_16k_tiny.yaml"


def seeded_wav(batch=2, length=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    freqs = 100 + 900 * torch.rand(batch, 3, 1, generator=g)
    wav = torch.sin(2 * math.pi * freqs * t).sum(1, keepdim=True) / 6
    return wav + 0.01 * torch.randn(batch, 1, length, generator=g)


@pytest.mark.parametrize(
    ("config", "n_params", "sr", "hop", "k", "kbps"),
    [
        ("dac_44k_8kbps", 76_651_890, 44100, 512, 9, 9 * 10 * 44100 / 512 / 1000),
        ("dac_16k_6kbps", 74_175_906, 16000, 320, 12, 6.0),
        ("dac_24k_24kbps", 74_708_706, 24000, 320, 32, 24.0),
    ],
)
def test_paper_configs(config, n_params, sr, hop, k, kbps):
    codec = codectk.build_codec(REPO / "conf" / f"{config}.yaml")
    assert isinstance(codec, DAC)
    # as the authors' DAC module counts it: encoder + quantizer + decoder
    assert sum(p.numel() for p in codec.parameters()) == n_params
    assert (codec.sample_rate, codec.hop_length, codec.n_codebooks) == (sr, hop, k)
    assert codec.frame_rate == pytest.approx(sr / hop)
    assert codec.bitrate() == pytest.approx(kbps)
    assert codec.bitrate(1) == pytest.approx(kbps / k)
    assert codec.n_quantizers_for_bandwidth(codec.bitrate(k // 2)) == k // 2


def test_architecture_follows_the_authors_layout():
    codec = DAC(**dac_tiny_conf())
    # 4 blocks x (3 residual units x 2 + 1) + 1 snakes on each side
    snakes = [n for n, m in codec.named_modules() if isinstance(m, Snake1d)]
    assert sum(n.startswith("encoder.") for n in snakes) == 29
    assert sum(n.startswith("decoder.") for n in snakes) == 29
    assert isinstance(codec.decoder.model[-1], torch.nn.Tanh)
    biases = [m.bias for m in codec.modules() if isinstance(m, torch.nn.Conv1d)]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)  # init_weights
    with pytest.raises(ValueError, match="must have the same product"):
        DAC(**dac_tiny_conf(decoder=dict(rates=[8, 8, 4, 2])))


def test_version_1_flat_config_builds_the_same_codec():
    """A version-1 (flat) codec_conf, as dac_tiny_conf was, reads into the sections."""
    flat = dict(
        sample_rate=16000,
        channels=1,
        encoder_dim=4,
        encoder_rates=[2, 4, 5, 8],
        latent_dim=None,
        decoder_dim=64,
        decoder_rates=[8, 5, 4, 2],
        n_codebooks=4,
        codebook_size=256,
        codebook_dim=8,
        quantizer_dropout=0.5,
    )
    assert_version_1_conf_builds("dac", flat, dac_tiny_conf())


def test_sections_keep_their_defaults_and_name_their_place():
    conf = dac_tiny_conf(quantizer=dict(n_codebooks=2))
    assert conf["quantizer"] == dict(n_codebooks=2, codebook_size=256)
    codec = DAC(**conf)
    assert (codec.n_codebooks, codec.codebook_size) == (2, 256)
    assert codec.quantizer.layers[0].codebook_dim == 8  # DAC.QUANTIZER's
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: unknown key\(s\) \['n_q'\]"):
        DAC(**dac_tiny_conf(quantizer=dict(n_q=2)))
    with pytest.raises(ValueError, match=r"codec_conf.encoder: unknown key\(s\) \['ratios'\]"):
        DAC(**dac_tiny_conf(encoder=dict(ratios=[2])))
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: \['dimension'\] are set by"):
        DAC(**dac_tiny_conf(quantizer=dict(dimension=8)))


def test_encode_decode_shapes_and_forward():
    torch.manual_seed(0)
    codec = CODECS.build("dac", dac_tiny_conf()).eval()
    wav = seeded_wav(length=3 * 320 + 17)
    with torch.no_grad():
        codes = codec.encode(wav)
        out = codec(wav)
        rec = codec.decode(codes)
        rec2 = codec.decode(codec.encode(wav, n_quantizers=2))
    assert codes.shape == (2, 4, 4) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 256
    assert rec.shape == rec2.shape == (2, 1, 4 * 320) and rec.abs().max() < 1
    assert torch.equal(out.codes, codes) and out.wav.shape == wav.shape
    torch.testing.assert_close(rec[..., : wav.shape[-1]], out.wav, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="codes have 5 codebooks"):
        codec.decode(torch.zeros(1, 5, 3, dtype=torch.long))


def test_training_forward_quantizer_dropout_and_losses():
    torch.manual_seed(0)
    codec = DAC(**dac_tiny_conf()).train()
    out = codec(seeded_wav(batch=4, length=1280))
    per_example = out.extras["n_quantizers_per_example"]
    assert per_example.shape == (4,) and torch.all(per_example[2:] == 4)
    assert out.commitment_loss > 0 and out.codebook_loss > 0
    (out.wav.abs().mean() + out.commitment_loss + out.codebook_loss).backward()
    assert all(p.grad is not None for p in codec.quantizer.parameters())


def test_one_generator_and_one_discriminator_step(tmp_path: Path, dumped):
    conf = load_yaml(TINY_YAML)
    conf.update(batch_size=2, segment_duration=0.2, discriminator_start_step=0)
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    g0 = [p.detach().clone() for p in t.codec.parameters()]
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    t.step = 1
    parts = t._train_step(t.train_set[1])
    for key in ("g_mel", "g_adv", "g_feat", "g_commit", "g_codebook", "g_total", "d_total"):
        assert math.isfinite(parts[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.codec.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.disc.parameters()))
