"""AudioDec rung (a): its training losses on fixed tensors against codectk's ``dac``
loss configured as conf/symAD_*.yaml and conf/AudioDec_v*_*.yaml.

* mel: ``losses/mel_loss.py:19-155`` (``MultiMelSpectrogramLoss``: magnitude
  sqrt(max(|X|^2, 1e-10)), Slaney mel bank from librosa, natural log of max(mel, 1e-10),
  L1, mean over the single resolution), at the paper's 48 kHz / 2048 / hop 300 / 80 mels
  and at the tiny test sizes;
* generator adversarial (LSGAN) and feature matching: ``losses/adversarial_loss.py:13-59``
  and ``losses/feat_match_loss.py:13-55`` with the configs' ``average_by_discriminators:
  false``, ``average_by_layers: false``, ``include_final_outputs: false``, combined as
  ``trainer/trainerGAN.py:244-257`` (lambda_adv (L_adv + lambda_feat L_fm)).

Opt-in (``CODECTK_REF_AUDIODEC``, see test/parity/refs.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from codectk.losses import LOSSES
from test.conftest import bundled_flacs
from test.parity import audiodec_ref, refs
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def ad():
    return audiodec_ref.load(refs.checkout("CODECTK_REF_AUDIODEC"))


def _speech(n: int, sample_rate: int) -> torch.Tensor:
    """Two crops of bundled speech (B=2, 1, n) at ``sample_rate``."""
    import soundfile as sf
    import soxr

    rows = []
    for f in bundled_flacs()[:2]:
        x, sr = sf.read(f, dtype="float32")
        x = soxr.resample(x, sr, sample_rate) if sr != sample_rate else x
        rows.append(torch.from_numpy(x[sample_rate // 2 : sample_rate // 2 + n].copy()))
    return torch.stack(rows)[:, None]


@pytest.mark.parametrize(
    "sr,n_fft,hop,n_mels",
    [(48000, 2048, 300, 80), (audiodec_ref.SAMPLE_RATE, 512, audiodec_ref.HOP, 40)],
    ids=["paper_48k", "tiny_16k"],
)
def test_mel_loss_and_its_gradient(ad, sr, n_fft, hop, n_mels):
    wav = _speech(40 * hop, sr)
    torch.manual_seed(0)
    est = (wav + 0.05 * torch.randn_like(wav)).requires_grad_(True)
    theirs = ad.mel.MultiMelSpectrogramLoss(
        fs=sr,
        fft_sizes=[n_fft],
        hop_sizes=[hop],
        win_lengths=[n_fft],
        window="hann_window",
        num_mels=n_mels,
        fmin=0,
        fmax=sr // 2,
        log_base=None,
    )
    t_loss = theirs(est, wav)
    (t_grad,) = torch.autograd.grad(t_loss, est)
    ours = LOSSES.build(
        "dac",
        {
            "sample_rate": sr,
            "weights": {
                "mel": 45.0,
            },
            "mel": {
                "windows": [n_fft],
                "hop_lengths": [hop],
                "n_mels": [n_mels],
                "log_weight": 2.302585093,  # the configs' value: ln 10 (natural-log mel L1)
                "mag_weight": 0.0,
                "eps": 1.0e-10,
                "power_floor": 1.0e-10,
            },
        },
    )
    o_loss, parts = ours.generator(wav, est)
    (o_grad,) = torch.autograd.grad(o_loss, est)
    torch.testing.assert_close(parts["mel"], t_loss.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(o_loss.detach(), 45.0 * t_loss.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(o_grad, 45.0 * t_grad, rtol=1e-4, atol=1e-5 * o_grad.abs().max())
    assert math.isclose(2.302585093, math.log(10), rel_tol=1e-9)


def _disc_outputs(seed: int) -> list[list[torch.Tensor]]:
    """MSD-like (B, C, T) and MPD-like (B, C, T, p) outputs: feature maps then logits."""
    g = torch.Generator().manual_seed(seed)
    outs = []
    for c, t in ((8, 60), (16, 30)):
        outs.append([torch.randn(2, c, t, generator=g), torch.randn(2, 1, t // 2, generator=g)])
    for p in (2, 3):
        outs.append(
            [
                torch.randn(2, 4, 20, p, generator=g),
                torch.randn(2, 16, 7, p, generator=g),
                torch.randn(2, 1, 8, p, generator=g),
            ]
        )
    return outs


def test_adversarial_and_feature_matching(ad):
    real = _disc_outputs(1)
    fake = [[x.clone().requires_grad_(True) for x in sub] for sub in _disc_outputs(2)]
    gen_adv = ad.adv.GeneratorAdversarialLoss(average_by_discriminators=False)
    feat = ad.feat.FeatureMatchLoss(
        average_by_discriminators=False, average_by_layers=False, include_final_outputs=False
    )
    lambda_adv, lambda_feat = 1.0, 2.0  # the AudioDec configs' weights
    t_adv, t_fm = gen_adv(fake), feat(fake, real)
    t_total = lambda_adv * (t_adv + lambda_feat * t_fm)  # trainerGAN.py:246-254
    t_grads = torch.autograd.grad(t_total, [x for sub in fake for x in sub])
    ours = LOSSES.build(
        "dac",
        {
            "sample_rate": audiodec_ref.SAMPLE_RATE,
            "weights": {
                "mel": 0.0,
                "adv": lambda_adv,
                "feat": lambda_feat,
            },
        },
    )
    wav = torch.zeros(2, 1, 8)
    o_total, parts = ours.generator(wav, wav, fake, real)
    o_grads = torch.autograd.grad(o_total, [x for sub in fake for x in sub])
    torch.testing.assert_close(parts["adv"], t_adv.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(parts["feat"], t_fm.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(o_total.detach(), t_total.detach(), rtol=1e-6, atol=0)
    for o, t in zip(o_grads, t_grads):
        torch.testing.assert_close(o, t, rtol=1e-6, atol=1e-9)
