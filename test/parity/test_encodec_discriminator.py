"""EnCodec's MS-STFT discriminator against audiocraft 1.3.0's, weights copied across.

Reference: ``audiocraft/adversarial/discriminators/msstftd.py:22-134`` built with the
compression solver's ``msstftd`` section (``config/solver/compression/default.yaml:71-80``:
32 filters, scales [1024, 2048, 512, 256, 128] with hops n / 4, LeakyReLU 0.3, weight
norm on every conv but the first, ``msstftd.py:62-64``); codectk's side is built from
``conf/encodec_24k_24kbps.yaml``. The authors' weights go through
:func:`codectk.convert.common.map_state_dict` (old-style ``weight_g`` / ``weight_v`` onto
codectk's ``parametrizations.weight.original0/1``, ``conv_post`` onto ``post``).

Bit for bit (``torch.equal``) in float32 and float64: every feature map and logit, the
gradients w.r.t. the input waveform and w.r.t. every discriminator parameter. One
discriminator update in float64 (``AdversarialLoss.train_adv``,
``adversarial/losses.py:89-113``): the hinge loss within rtol 1e-6 and its gradients
within 1e-7 of their largest entry (the authors accumulate the loss in float32), then
Adam (lr 3e-4, betas (0.5, 0.9), ``solvers/builders.py:89-115``) on both, the
parameters after within atol 1e-10.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import load_train_config
from codectk.convert.common import map_state_dict
from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES
from codectk.train.optim import build_optimizer
from test.parity import audiocraft_ref
from test.single_thread import one_torch_thread  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "conf" / "encodec_24k_24kbps.yaml"
RENAMES = ((r"\.conv_post\.", ".post."),)
# audiocraft builds its convs with torch.nn.utils.weight_norm, deprecated in torch 2.x
pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")


def _weights(theirs) -> dict[str, torch.Tensor]:
    """The authors' state dict without torchaudio's window buffers (codectk's are not saved)."""
    return {k: v for k, v in theirs.state_dict().items() if not k.endswith("spec_transform.window")}


def _pair(dtype: torch.dtype = torch.float64):
    msstftd = audiocraft_ref.msstftd()
    config = load_train_config(CONFIG)
    torch.manual_seed(0)
    theirs = msstftd.MultiScaleSTFTDiscriminator(
        filters=32,
        in_channels=1,
        out_channels=1,
        norm="weight_norm",
        n_ffts=[1024, 2048, 512, 256, 128],
        hop_lengths=[256, 512, 128, 64, 32],
        win_lengths=[1024, 2048, 512, 256, 128],
        activation="LeakyReLU",
        activation_params={"negative_slope": 0.3},
    ).to(dtype)
    ours = DISCRIMINATORS.build(config.discriminator, config.discriminator_conf)
    ours.load_state_dict(map_state_dict(_weights(theirs), ours, RENAMES))
    return theirs, ours.to(dtype), config


def _wav(seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(2, 1, 2560, generator=gen, dtype=torch.float64).to(dtype)


def _as_ours(logits, fmaps):
    return [[*f, logit] for logit, f in zip(logits, fmaps)]


def test_layout_and_parameter_count_match():
    theirs, ours, _ = _pair()
    n_theirs = sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == n_theirs
    first = dict(ours.named_parameters())
    # the first conv of each scale is a plain conv, the others weight-normed
    assert "discriminators.0.convs.0.weight" in first
    assert "discriminators.0.convs.1.parametrizations.weight.original0" in first


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_backward_equal_audiocraft_bit_for_bit(dtype):
    theirs, ours, _ = _pair(dtype)
    wav_theirs = _wav(1, dtype).requires_grad_(True)
    wav_ours = wav_theirs.detach().clone().requires_grad_(True)
    out_theirs = _as_ours(*theirs(wav_theirs))
    out_ours = ours(wav_ours)
    assert [len(o) for o in out_ours] == [len(o) for o in out_theirs] == [6] * 5
    probe = torch.Generator().manual_seed(2)
    total_theirs, total_ours = 0.0, 0.0
    for k, (a, b) in enumerate(zip(out_theirs, out_ours)):
        for i, (ta, tb) in enumerate(zip(a, b)):
            assert torch.equal(tb, ta), f"scale {k} output {i}"
            w = torch.randn(ta.shape, generator=probe, dtype=ta.dtype)
            total_theirs = total_theirs + (ta * w).sum()
            total_ours = total_ours + (tb * w).sum()
    total_theirs.backward()
    total_ours.backward()
    assert torch.equal(wav_ours.grad, wav_theirs.grad)
    grads_theirs = {k: p.grad for k, p in theirs.named_parameters()}
    grads = map_state_dict(grads_theirs, ours, RENAMES)
    for name, p in ours.named_parameters():
        assert torch.equal(p.grad, grads[name]), name


def test_one_discriminator_update_equals_audiocraft():
    losses = audiocraft_ref.adversarial_losses()
    theirs, ours, config = _pair()
    # audiocraft: builders.get_optimizer(adversary.parameters(), cfg.optim) -> Adam
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=3e-4, betas=(0.5, 0.9), weight_decay=0.0)
    adversary = losses.AdversarialLoss(
        theirs,
        opt_theirs,
        loss=losses.get_adv_criterion("hinge"),
        loss_real=losses.get_real_criterion("hinge"),
        loss_fake=losses.get_fake_criterion("hinge"),
        loss_feat=losses.FeatureMatchingLoss(torch.nn.L1Loss(), normalize=True),
        normalize=True,
    )
    loss = LOSSES.build(config.loss, {"sample_rate": 24000, **config.loss_conf}).double()
    opt_ours = build_optimizer(config.optim2, config.optim2_conf, ours.parameters())
    real, fake = _wav(3)[:1], 0.5 * _wav(4)[:1]
    d_theirs = adversary.train_adv(fake, real)
    grads_theirs = map_state_dict({k: p.grad for k, p in theirs.named_parameters()}, ours, RENAMES)
    d_ours, _ = loss.discriminator(ours(real), ours(fake.detach()))
    opt_ours.zero_grad()
    d_ours.backward()
    # the authors accumulate the loss in a float32 torch.tensor(0.) (losses.py:98-106),
    # so their loss and the 1/K factor on its gradient are rounded to float32
    torch.testing.assert_close(d_ours.float(), d_theirs, rtol=1e-6, atol=0.0)
    for name, p in ours.named_parameters():
        scale = float(grads_theirs[name].abs().max())
        torch.testing.assert_close(p.grad, grads_theirs[name], rtol=0.0, atol=1e-7 * scale)
    opt_ours.step()
    after = map_state_dict(_weights(theirs), ours, RENAMES)
    for name, value in ours.state_dict().items():
        # Adam's first step is lr * g / (|g| + eps): gradients of 1e-8, near eps, carry
        # that 1e-8 relative difference into steps of 1.5e-4 at about 1e-12
        torch.testing.assert_close(value, after[name], rtol=0.0, atol=1e-10, msg=name)
