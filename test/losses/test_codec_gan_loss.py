"""CodecGANLoss: registry construction, parts with and without discriminator outputs."""

from __future__ import annotations

import pytest
import torch

from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES, CodecGANLoss

SR = 16000


def make_loss_conf(**overrides):
    conf = {"sample_rate": SR, "mel": {"windows": [64, 256], "n_mels": 32}}
    return {**conf, **overrides}


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(2, 1, 4000, generator=gen)
    wav_hat = (wav + 0.02 * torch.randn(wav.shape, generator=gen)).requires_grad_(True)
    return wav, wav_hat


@pytest.fixture
def disc():
    torch.manual_seed(0)
    conf = {"scales": 2, "channels": 4, "max_channels": 16, "downsample_scales": [4]}
    return DISCRIMINATORS.build("msd", conf)


def test_parts_without_discriminator(batch):
    loss = LOSSES.build("codec_gan", make_loss_conf())
    assert isinstance(loss, CodecGANLoss)
    wav, wav_hat = batch
    total, parts = loss.generator(wav, wav_hat, None, None, torch.tensor(0.5), torch.tensor(0.0))
    assert set(parts) == {"mel", "commit", "codebook", "total"}
    torch.testing.assert_close(total.detach(), parts["mel"] + 0.5)
    total.backward()
    assert torch.isfinite(wav_hat.grad).all() and wav_hat.grad.abs().sum() > 0


def test_parts_with_discriminator_and_weights(batch, disc):
    weights = {
        "mel": 2.0,
        "stft": 0.5,
        "time": 0.1,
        "adv": 3,  # YAML ints are accepted for floats
        "feat": 10.0,
        "commit": 0.25,
        "codebook": 1.0,
    }
    stft = {"resolutions": [[512, 128, 512]]}
    loss = LOSSES.build("codec_gan", make_loss_conf(weights=weights, stft=stft))
    wav, wav_hat = batch
    total, parts = loss.generator(
        wav, wav_hat, disc(wav_hat), disc(wav), torch.tensor(0.4), torch.tensor(0.2)
    )
    keys = ["mel", "stft", "time", "adv", "feat", "commit", "codebook"]
    assert set(parts) == {*keys, "total"}
    assert all(not p.requires_grad and torch.isfinite(p) for p in parts.values())
    expected = sum(weights[k] * parts[k] for k in keys)
    torch.testing.assert_close(parts["total"], expected)
    torch.testing.assert_close(total.detach(), expected)


def test_real_outs_none_skips_feature_matching(batch, disc):
    loss = LOSSES.build("codec_gan", make_loss_conf())
    wav, wav_hat = batch
    _, parts = loss.generator(wav, wav_hat, fake_outs=disc(wav_hat))
    assert set(parts) == {"mel", "adv", "total"}


def test_discriminator_objective(batch, disc):
    loss = LOSSES.build("codec_gan", make_loss_conf(adversarial_loss_type="mse"))
    wav, wav_hat = batch
    total, parts = loss.discriminator(disc(wav), disc(wav_hat.detach()))
    assert set(parts) == {"real", "fake", "total"}
    torch.testing.assert_close(total.detach(), parts["real"] + parts["fake"])
    total.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lambda_rec'\]"):
        LOSSES.build("codec_gan", make_loss_conf(lambda_rec=1.0))
    with pytest.raises(ValueError, match=r"weights: unknown term\(s\) \['rec'\]"):
        LOSSES.build("codec_gan", make_loss_conf(weights={"rec": 1.0}))
    with pytest.raises(ValueError, match="unknown loss 'gan'"):
        LOSSES.build("gan", make_loss_conf())
    with pytest.raises(ValueError, match=r"loss_conf.mel: windows='64'"):
        LOSSES.build("codec_gan", make_loss_conf(mel={"windows": "64"}))
    with pytest.raises(ValueError, match=r"loss_conf.mel: unknown key\(s\) \['hop'\]"):
        LOSSES.build("codec_gan", make_loss_conf(mel={"hop": 4}))
    with pytest.raises(ValueError, match=r"loss_conf.mel: \['sample_rate'\] are set by codectk"):
        LOSSES.build("codec_gan", make_loss_conf(mel={"sample_rate": 8000}))
    with pytest.raises(ValueError, match="adversarial_loss_type 'wgan' not supported"):
        LOSSES.build("codec_gan", make_loss_conf(adversarial_loss_type="wgan"))
    with pytest.raises(ValueError, match=">= 0"):
        LOSSES.build("codec_gan", make_loss_conf(weights={"feat": -1.0}))


def test_shape_mismatch_raises(batch):
    wav, wav_hat = batch
    loss = CodecGANLoss(SR, mel={"windows": [64]})
    with pytest.raises(ValueError, match="differ"):
        loss.generator(wav, wav_hat[..., :-1])
