"""DAC parity, rung (a): every loss term of DAC's objective on fixed tensors.

Reference: descript-audio-codec 1.0.0, ``dac/nn/loss.py`` (``MelSpectrogramLoss``
:231-327, ``GANLoss`` :330-368), configured as the authors' ``conf/final/16khz.yml``
(:63-69: windows 32..2048, mels 5..320, fmin 0, fmax None, pow 1, clamp_eps 1e-5,
mag_weight 0; log_weight left at 1) and weighted as ``scripts/train.py:255-265`` with
``16khz.yml:41-46`` (mel 15, feat 2, adv 1, commitment 0.25, codebook 1). codectk's side is
the ``dac`` loss (:mod:`codectk.losses.dac_loss`) with its defaults.

Tolerances:

* mel loss: float32 only (the authors' STFT runs through ``audiotools.AudioSignal``,
  which casts float64 audio to float32, and librosa's float32 mel filters): value within
  2e-6 relative, gradient w.r.t. the estimate within 2e-4 of its largest magnitude (codectk
  takes ln/ln 10 where the authors take log10, and multiplies its filterbank the other way
  round: float32 rounding of a sum of 7 scales);
* LSGAN and feature-matching terms: float64 on the outputs of a fixed random
  discriminator, values and gradients within 1e-12 relative.
"""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from torch import nn

from codectk.benchmarks import _dac_reference_step
from codectk.losses import LOSSES
from test.conftest import bundled_flacs
from test.parity.dac_reference import assert_rel_close
from test.parity.refs import require_package
from test.single_thread import one_torch_thread  # noqa: F401

dac = require_package("dac")  # skips the module outside tools/venv-compare
audiotools = require_package("audiotools")

# conf/final/16khz.yml:63-69 and :41-46, shared with the step's test and the benchmark
MEL_CONF, LAMBDAS = _dac_reference_step.MEL_CONF, _dac_reference_step.LAMBDAS


def _speech_pair(sample_rate: int, length: int = 6080) -> tuple[torch.Tensor, torch.Tensor]:
    """Two bundled utterances (B = 2) and a degraded copy: the "reconstruction"."""
    rows = []
    for path in bundled_flacs()[:2]:
        audio, sr = sf.read(path, dtype="float32", frames=length, start=8000)
        assert sr == 16000
        rows.append(torch.from_numpy(audio))
    ref = torch.stack(rows)[:, None]  # (2, 1, T); at other rates only the filters change
    g = torch.Generator().manual_seed(0)
    est = 0.8 * ref + 0.01 * torch.randn(ref.shape, generator=g)
    return ref, est


def _signal(wav, sample_rate):
    return audiotools.AudioSignal(wav, sample_rate)


@pytest.mark.parametrize("sample_rate", [16000, 44100])
@pytest.mark.parametrize("mag_weight", [0.0, 1.0])
def test_multiscale_mel_loss_value_and_gradient(sample_rate, mag_weight):
    ref_loss = dac.nn.loss.MelSpectrogramLoss(**{**MEL_CONF, "mag_weight": mag_weight})
    ours = LOSSES.build("dac", {"sample_rate": sample_rate, "mel": {"mag_weight": mag_weight}})
    wav, est = _speech_pair(sample_rate)
    est_ref, est_ours = est.clone().requires_grad_(), est.clone().requires_grad_()
    # train.py:257: state.mel_loss(recons, signal)
    expected = ref_loss(_signal(est_ref, sample_rate), _signal(wav, sample_rate))
    value = ours.mel_loss(wav, est_ours)
    assert float(value) == pytest.approx(float(expected), rel=2e-6)
    expected.backward()
    value.backward()
    assert_rel_close(est_ours.grad, est_ref.grad, 2e-4, "d mel / d estimate")


class _FixedDiscriminator(nn.Module):
    """Three sub-discriminators with 3, 2 and 1 feature maps (then logits): random
    float64 conv stacks, so the losses see outputs that depend on the input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stacks = nn.ModuleList(
            nn.ModuleList(
                nn.Conv1d(1 if i == 0 else 4, 4 if i < n else 1, 5, 2) for i in range(n + 1)
            )
            for n in (3, 2, 1)
        ).double()

    def forward(self, x):
        outs = []
        for stack in self.stacks:
            maps, h = [], x
            for conv in stack:
                h = torch.tanh(conv(h))
                maps.append(h)
            outs.append(maps)
        return outs


class _Signal:
    """What ``GANLoss`` reads of an ``AudioSignal`` (``audio_data``, ``clone``,
    ``detach``), without its cast to float32."""

    def __init__(self, audio_data):
        self.audio_data = audio_data

    def clone(self):
        return _Signal(self.audio_data.clone())

    def detach(self):
        return _Signal(self.audio_data.detach())


def _gan_inputs():
    g = torch.Generator().manual_seed(2)
    real = 0.5 * torch.randn(2, 1, 64, generator=g, dtype=torch.float64)
    fake = 0.5 * torch.randn(2, 1, 64, generator=g, dtype=torch.float64)
    return real, fake


def test_lsgan_discriminator_loss_value_and_weight_gradients():
    disc = _FixedDiscriminator()
    real, fake = _gan_inputs()
    expected = dac.nn.loss.GANLoss(disc).discriminator_loss(_Signal(fake), _Signal(real))
    expected.backward()
    ref_grads = [p.grad.clone() for p in disc.parameters()]
    disc.zero_grad()
    ours = LOSSES.build("dac", {"sample_rate": 16000})
    value, parts = ours.discriminator(disc(real), disc(fake.detach()))
    assert_rel_close(value.detach(), expected.detach(), 1e-12, "L_D")
    assert_rel_close(parts["real"] + parts["fake"], expected.detach(), 1e-12, "L_D parts")
    value.backward()
    for i, (p, r) in enumerate(zip(disc.parameters(), ref_grads)):
        assert_rel_close(p.grad, r, 1e-12, f"d L_D / d weight {i}")


@pytest.mark.parametrize("term", ["adv", "feat"])
def test_generator_adversarial_and_feature_terms(term):
    disc = _FixedDiscriminator()
    real, fake = _gan_inputs()
    fake_ref, fake_ours = fake.clone().requires_grad_(), fake.clone().requires_grad_()
    loss_g, loss_feature = dac.nn.loss.GANLoss(disc).generator_loss(
        _Signal(fake_ref), _Signal(real)
    )
    expected = loss_g if term == "adv" else loss_feature
    weights = {"mel": 0.0, "adv": 0.0, "feat": 0.0, term: 1.0}
    ours = LOSSES.build("dac", {"sample_rate": 16000, "weights": weights})
    with torch.no_grad():
        real_outs = disc(real)
    total, parts = ours.generator(real, fake_ours, disc(fake_ours), real_outs)
    assert_rel_close(parts[term], expected.detach(), 1e-12, term)
    expected.backward()
    total.backward()
    assert_rel_close(fake_ours.grad, fake_ref.grad, 1e-12, f"d {term} / d fake")


def test_weighted_generator_total_as_train_loop():
    """``train.py:255-265``: output[...] terms, then ``sum(v * output[k] for k, v in
    lambdas.items() if k in output)``; codectk's total with its default weights."""
    disc = _FixedDiscriminator().float()
    wav, est = _speech_pair(16000)
    est_ref, est_ours = est.clone().requires_grad_(), est.clone().requires_grad_()
    commit, codebook = torch.tensor(0.37), torch.tensor(0.21)
    output = {}
    recons, signal = _signal(est_ref, 16000), _signal(wav, 16000)
    output["mel/loss"] = dac.nn.loss.MelSpectrogramLoss(**MEL_CONF)(recons, signal)
    gen_loss, feat_loss = dac.nn.loss.GANLoss(disc).generator_loss(recons, signal)
    output["adv/gen_loss"], output["adv/feat_loss"] = gen_loss, feat_loss
    output["vq/commitment_loss"], output["vq/codebook_loss"] = commit, codebook
    expected = sum([v * output[k] for k, v in LAMBDAS.items() if k in output])
    ours = LOSSES.build("dac", {"sample_rate": 16000})
    with torch.no_grad():
        real_outs = disc(wav)
    total, parts = ours.generator(wav, est_ours, disc(est_ours), real_outs, commit, codebook)
    assert float(total) == pytest.approx(float(expected), rel=2e-6)
    for ours_key, ref_key in (
        ("mel", "mel/loss"),
        ("adv", "adv/gen_loss"),
        ("feat", "adv/feat_loss"),
    ):
        assert float(parts[ours_key]) == pytest.approx(float(output[ref_key]), rel=2e-6), ours_key
    expected.backward()
    total.backward()
    assert_rel_close(est_ours.grad, est_ref.grad, 2e-4, "d L_G / d estimate")
