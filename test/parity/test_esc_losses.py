"""ESC rung (a): its multi-scale mel loss (``esc/modules/loss/generator_loss.py:34-72``:
torchaudio ``MelSpectrogram`` magnitudes at windows 32..2048 with 5..320 HTK bands, L1 of
the magnitudes plus L1 of log10(max(S, 1e-5)^2), summed over scales, per example then the
batch mean as ``trainer_adv.py:72,82-87``) against codectk's ``esc`` loss, value and
gradient, on bundled speech. The complex-STFT loss and the quantizer losses are compared
inside the generator forward (test_esc_quantizer.py).

Opt-in (``CODECTK_REF_ESC``, see test/parity/refs.py).
"""

from __future__ import annotations

import pytest
import torch

from codectk.losses import LOSSES
from test.parity import esc_ref, refs
from test.parity.test_audiodec_losses import _speech
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def esc():
    return esc_ref.load(refs.checkout("CODECTK_REF_ESC"))


def test_mel_loss_and_its_gradient(esc):
    wav = _speech(5 * 320 - 80, esc_ref.SAMPLE_RATE)
    torch.manual_seed(0)
    est = (wav + 0.05 * torch.randn_like(wav)).requires_grad_(True)
    t_loss = esc.gen.MelSpectrogramLoss()(wav[:, 0], est[:, 0]).mean()
    (t_grad,) = torch.autograd.grad(t_loss, est)
    ours = LOSSES.build("esc", {"sample_rate": esc_ref.SAMPLE_RATE, "weights": {"mel": 15.0}})
    o_loss, parts = ours.generator(wav, est)
    (o_grad,) = torch.autograd.grad(o_loss, est)
    torch.testing.assert_close(parts["mel"], t_loss.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(o_loss.detach(), 15.0 * t_loss.detach(), rtol=1e-5, atol=0)
    # L1 terms: sign(S - Ŝ) flips with rounding where a mel bin of the two is equal
    atol = 1e-5 * float(o_grad.abs().max())
    torch.testing.assert_close(o_grad, 15.0 * t_grad, rtol=1e-4, atol=atol)
