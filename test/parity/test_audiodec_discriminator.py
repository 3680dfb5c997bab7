"""AudioDec rung (b): its HiFi-GAN MSD + MPD against codectk's ``combined`` of
``hifigan_msd`` and ``mpd`` configured as conf/symAD_*.yaml, weights copied: every
feature map and logit, and every weight gradient of the LSGAN discriminator loss.

AudioDec: ``models/vocoder/HiFiGAN.py:308-395`` (``Discriminator``: MSD outputs then MPD
outputs), ``models/vocoder/modules/discriminator.py:27-448``; opt-in
(``CODECTK_REF_AUDIODEC``, see test/parity/refs.py).
"""

from __future__ import annotations

import pytest
import torch

from codectk.discriminators import DISCRIMINATORS
from test.parity import audiodec_ref, refs
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def ad():
    return audiodec_ref.load(refs.checkout("CODECTK_REF_AUDIODEC"))


def _pair(ad):
    torch.manual_seed(0)
    theirs = audiodec_ref.their_discriminator(ad)
    ours = DISCRIMINATORS.build("combined", audiodec_ref.discriminator_conf())
    names = audiodec_ref.load_discriminator_(ours, theirs)
    return theirs, ours, names


def test_their_msd_is_unnormalised_and_ours_matches(ad):
    theirs, ours, _ = _pair(ad)
    # the reported difference: their norm hooks test nn.Conv2d (discriminator.py:355-373),
    # the MSD's layers are Conv1d, so none is normalised; their MPD is weight-normalised
    msd_keys = [k for k in theirs.state_dict() if k.startswith("msd.")]
    assert msd_keys and not any("weight_g" in k or "weight_orig" in k for k in msd_keys)
    assert any("weight_g" in k for k in theirs.state_dict() if k.startswith("mpd."))
    assert not any("parametrizations" in k for k in ours.state_dict() if "hifigan_msd" in k)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(ours) == n(theirs)


def test_outputs_and_gradients_equal(ad):
    theirs, ours, names = _pair(ad)
    torch.manual_seed(1)
    t = 40 * audiodec_ref.HOP + 1  # not a multiple of a period: the MPD pads (reflect)
    real, fake = 0.3 * torch.randn(2, 1, t), 0.3 * torch.randn(2, 1, t)
    t_real, t_fake = theirs(real), theirs(fake)
    o_real, o_fake = ours(real), ours(fake)
    assert len(t_real) == len(o_real) == 4  # 2 scales + 2 periods
    for t_sub, o_sub in zip(t_real + t_fake, o_real + o_fake):
        assert len(t_sub) == len(o_sub)
        for t, o in zip(t_sub, o_sub):
            # their MPD logits are flattened to (B, T' p) (discriminator.py:135)
            torch.testing.assert_close(o.reshape(t.shape), t, rtol=1e-5, atol=1e-6)
    # their DiscriminatorAdversarialLoss (losses/adversarial_loss.py:62-124, LSGAN,
    # summed over the 4 sub-discriminators as their config's average_by_discriminators:
    # false) against codectk's dac loss (the AudioDec configs' loss)
    from codectk.losses import LOSSES

    dis = ad.adv.DiscriminatorAdversarialLoss(average_by_discriminators=False)
    real_loss, fake_loss = dis(t_fake, t_real)
    (real_loss + fake_loss).backward()
    loss = LOSSES.build("dac", {"sample_rate": audiodec_ref.SAMPLE_RATE})
    d_loss, parts = loss.discriminator(o_real, o_fake)
    d_loss.backward()
    torch.testing.assert_close(parts["real"], real_loss.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(parts["fake"], fake_loss.detach(), rtol=1e-6, atol=0)
    theirs_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        g = theirs_params[names[key]].grad
        torch.testing.assert_close(
            p.grad, g, rtol=1e-4, atol=1e-7, msg=lambda m, k=key: f"{k}: {m}"
        )


def test_paper_size_parameter_count(ad):
    """conf/symAD_vctk_48000_hop300.yaml's discriminator against theirs from
    config/autoencoder/symAD_vctk_48000_hop300.yaml:46-79 (the vocoder configs' are the
    same)."""
    import yaml

    from codectk.config import load_train_config
    from test.conftest import REPO

    ours = load_train_config(REPO / "conf/symAD_vctk_48000_hop300.yaml")
    root = refs.checkout("CODECTK_REF_AUDIODEC")
    params = yaml.safe_load((root / "config/autoencoder/symAD_vctk_48000_hop300.yaml").read_text())
    theirs = ad.hifigan.Discriminator(**params["discriminator_params"])
    built = DISCRIMINATORS.build(ours.discriminator, ours.discriminator_conf)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(built) == n(theirs) == 70_711_277
