"""EnCodec's generator losses against audiocraft 1.3.0's compression solver.

References (audiocraft 1.3.0):

* mel filterbank: ``torchaudio.functional.melscale_fbanks`` (HTK scale, no norm), which
  audiocraft's ``MelSpectrogramWrapper`` uses through ``torchaudio.transforms.MelSpectrogram``
  (``losses/specloss.py:42-44``); within atol 1e-5 (torchaudio builds it in float32,
  codectk in float64, rounded once to float32);
* msspec loss: ``MultiScaleMelSpectrogramLoss`` (``losses/specloss.py:96-149``) with
  ``config/solver/compression/default.yaml:52-61`` (windows 2^6..2^10, 64 mels from
  64 Hz, normalized, alphas false, floor 1e-5); value within rtol 1e-5, gradient within
  1e-5 of its largest entry (float32 both sides: the STFT normalisation and the
  filterbank round differently);
* adversarial and feature-matching losses: ``AdversarialLoss.forward`` with the "hinge"
  criteria and ``FeatureMatchingLoss(L1Loss())`` (``adversarial/losses.py:115-228``,
  ``solvers/builders.py:214-244``), normalised over sub-discriminators and feature maps;
  values within rtol 1e-6, gradients within 1e-6 of their largest entry (sums in
  another order);
* the whole generator objective of one solver step (``solvers/compression.py:103-140``:
  the commitment penalty backpropagated, then the balancer over adv, feat, l1, msspec)
  against codectk's ``encodec`` loss built from ``conf/encodec_24k_24kbps.yaml``, for 3
  steps (the balancer's EMA): gradient within 1e-5 of its largest entry.

Real speech from the bundled corpus (16 kHz; the losses are built at that rate).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codectk.config import load_train_config
from codectk.discriminators import DISCRIMINATORS
from codectk.features import mel_filterbank
from codectk.losses import LOSSES
from codectk.losses.adversarial import feature_matching_loss, generator_adversarial_loss
from codectk.losses.encodec_loss import EnCodecFrequencyLoss
from test.conftest import bundled_flacs
from test.parity import audiocraft_ref, refs
from test.single_thread import one_torch_thread  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "conf" / "encodec_24k_24kbps.yaml"
SR = 16000
# torchaudio warns that the 64-band bank of a 64-sample window has empty bands (as the
# authors' loss does at its first scale)
pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filterbank:UserWarning")


def _speech(n: int = 8000) -> torch.Tensor:
    """Two segments of bundled speech, (2, 1, n), and a degraded copy."""
    sf = refs.require_package("soundfile")
    wav, sr = sf.read(bundled_flacs()[0], dtype="float32")
    assert sr == SR
    x = torch.from_numpy(np.stack([wav[8000 : 8000 + n], wav[20000 : 20000 + n]]))[:, None]
    gen = torch.Generator().manual_seed(0)
    kernel = torch.tensor([[[0.25, 0.5, 0.25]]])
    y = torch.nn.functional.conv1d(x, kernel, padding=1) + 0.003 * torch.randn(
        x.shape, generator=gen
    )
    return x, y


def _close_grad(ours: torch.Tensor, theirs: torch.Tensor, rel: float) -> None:
    torch.testing.assert_close(ours, theirs, rtol=0.0, atol=rel * float(theirs.abs().max()))


@pytest.mark.parametrize("sr,n_fft", [(16000, 64), (16000, 1024), (24000, 256), (48000, 2048)])
def test_htk_mel_filterbank_equals_torchaudio(sr, n_fft):
    torchaudio = refs.require_package("torchaudio")
    theirs = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, 64.0, sr / 2, 64, sr, None, "htk"
    )
    ours = mel_filterbank(sr, n_fft, 64, f_min=64.0, htk=True, norm=None)
    torch.testing.assert_close(ours.T, theirs, rtol=0.0, atol=1e-5)


@pytest.mark.parametrize("alphas", [False, True])
def test_msspec_loss_equals_audiocraft(alphas):
    specloss = audiocraft_ref.specloss()
    theirs = specloss.MultiScaleMelSpectrogramLoss(
        SR,
        range_start=6,
        range_end=11,
        n_mels=64,
        f_min=64,
        f_max=None,
        normalized=True,
        alphas=alphas,
        floor_level=1e-5,
    )
    config = load_train_config(CONFIG).loss_conf["freq"]
    weights = [float(np.sqrt(2**i - 1)) for i in range(6, 11)] if alphas else None
    ours = EnCodecFrequencyLoss(SR, **{**config, "alphas": weights})
    x, y = _speech()
    y_theirs, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    loss_theirs = theirs(y_theirs, x)  # audiocraft calls criterion(y_pred, y)
    loss_ours = ours(x, y_ours)
    torch.testing.assert_close(loss_ours, loss_theirs, rtol=1e-5, atol=0.0)
    loss_theirs.backward()
    loss_ours.backward()
    _close_grad(y_ours.grad, y_theirs.grad, 1e-5)


class _AsAudiocraft(torch.nn.Module):
    """A codectk discriminator with the authors' output layout: (logits, feature maps)."""

    def __init__(self, disc: torch.nn.Module):
        super().__init__()
        self.disc = disc

    def forward(self, wav):
        outs = self.disc(wav)
        return [o[-1] for o in outs], [o[:-1] for o in outs]


def _adversary(disc: torch.nn.Module):
    losses = audiocraft_ref.adversarial_losses()
    return losses.AdversarialLoss(
        _AsAudiocraft(disc),
        torch.optim.SGD(disc.parameters(), lr=0.0),
        loss=losses.get_adv_criterion("hinge"),
        loss_real=losses.get_real_criterion("hinge"),
        loss_fake=losses.get_fake_criterion("hinge"),
        loss_feat=losses.FeatureMatchingLoss(torch.nn.L1Loss(), normalize=True),
        normalize=True,
    )


def _discriminator() -> torch.nn.Module:
    torch.manual_seed(0)
    conf = {**load_train_config(CONFIG).discriminator_conf, "filters": 8, "max_filters": 8}
    return DISCRIMINATORS.build("ms_stft", conf)


def test_adversarial_and_feature_matching_losses_equal_audiocraft():
    disc = _discriminator()
    adversary = _adversary(disc)
    x, y = _speech()
    y_theirs, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    adv_theirs, feat_theirs = adversary(y_theirs, x)
    fake, real = disc(y_ours), [[t.detach() for t in o] for o in disc(x)]
    adv_ours = generator_adversarial_loss(fake, "hinge_linear")
    feat_ours = feature_matching_loss(real, fake, relative=False)
    torch.testing.assert_close(adv_ours, adv_theirs, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(feat_ours, feat_theirs, rtol=1e-6, atol=0.0)
    for ours, theirs in ((adv_ours, adv_theirs), (feat_ours, feat_theirs)):
        g_theirs = torch.autograd.grad(theirs, y_theirs, retain_graph=True)[0]
        g_ours = torch.autograd.grad(ours, y_ours, retain_graph=True)[0]
        _close_grad(g_ours, g_theirs, 1e-6)
    # the paper's variants differ: relu(1 - D) and relative feature matching
    assert not torch.allclose(generator_adversarial_loss(fake, "hinge"), adv_theirs)
    assert not torch.allclose(feature_matching_loss(real, fake, relative=True), feat_theirs)


def test_generator_objective_of_a_solver_step_equals_audiocraft():
    balancer = audiocraft_ref.balancer()
    specloss = audiocraft_ref.specloss()
    config = load_train_config(CONFIG)
    disc = _discriminator()
    adversary = _adversary(disc)
    solver = config.loss_conf["weights"]  # the authors' (default.yaml:13-24), our names
    weights = {
        "adv_msstftd": solver["adv"],
        "feat_msstftd": solver["feat"],
        "l1": solver["time"],
        "msspec": solver["freq"],
    }
    theirs_balancer = balancer.Balancer(
        weights, balance_grads=True, total_norm=1.0, ema_decay=0.999, per_batch_item=True
    )
    msspec = specloss.MultiScaleMelSpectrogramLoss(
        SR, 6, 11, n_mels=64, f_min=64, f_max=None, normalized=True, alphas=False
    )
    ours = LOSSES.build(config.loss, {"sample_rate": SR, **config.loss_conf})
    x, y0 = _speech()
    for step in range(3):
        y = y0 * (1.0 + 0.2 * step)
        # audiocraft: compression.py:106-140 (penalty first, then the balancer)
        theta = y.clone().requires_grad_(True)
        y_pred = theta * 1.0
        penalty = 0.01 * (theta**2).mean()
        adv, feat = adversary(y_pred, x)
        balanced = {
            "adv_msstftd": adv,
            "feat_msstftd": feat,
            "l1": torch.nn.L1Loss()(y_pred, x),
            "msspec": msspec(y_pred, x),
        }
        penalty.backward(retain_graph=True)
        theirs_balancer.backward(balanced, y_pred)
        # codectk: the trainer's generator objective (train/trainer.py, _train_step)
        theta_ours = y.clone().requires_grad_(True)
        wav_hat = theta_ours * 1.0
        fake = disc(wav_hat)
        with torch.no_grad():
            real = disc(x)
        total, parts = ours.generator(x, wav_hat, fake, real, 0.01 * (theta_ours**2).mean())
        total.backward(inputs=[theta_ours])
        for name, key in (("adv", "adv_msstftd"), ("feat", "feat_msstftd"), ("time", "l1")):
            torch.testing.assert_close(parts[name], balanced[key].detach(), rtol=1e-6, atol=0.0)
        torch.testing.assert_close(parts["freq"], balanced["msspec"].detach(), rtol=1e-5, atol=0)
        _close_grad(theta_ours.grad, theta.grad, 1e-5)
