"""DAC parity, rung (b): every discriminator's forward and backward on copied weights.

Reference: descript-audio-codec 1.0.0, ``dac/model/discriminator.py`` (``MPD`` :27-62,
``MRD`` :101-172, ``Discriminator`` :175-217 with its ``preprocess`` :207-212). Weights go
through codectk's converter (``DACConverter.discriminator_state_dict``), which maps the
authors' ``torch.nn.utils.weight_norm`` names (``weight_g``/``weight_v`` inside
``Sequential(conv, LeakyReLU)``) onto codectk's ``parametrizations.weight.original0/1``.

Compared: every feature map and logit, and the gradients of a fixed random projection of
all of them w.r.t. the input waveform and every weight (g, v, bias).

Tolerances: the MPD runs in float64 (pure torch on both sides): 1e-12 of each tensor's
largest magnitude. The MRD and the full discriminator run in float32, because the
authors' MRD takes its STFT from ``audiotools.AudioSignal``, which casts float64 audio to
float32 (audiotools 0.7.2 ``audio_signal.py:552``) and uses a float32 window: outputs
within 1e-5 and gradients within 1e-4 of the largest magnitude. Measured against a float64
evaluation of codectk's MRD on the same weights, the authors' float32 weight gradients
are off by up to 3e-6 and codectk's float32 ones by up to 2.5e-5 (a weight-norm gain's
gradient sums ~50k products), so the differences are float32 rounding, while a wrong
band, pad or frame would be off by O(1).
"""

from __future__ import annotations

import pytest
import torch

from codectk.config import load_yaml
from codectk.discriminators import DISCRIMINATORS
from test.conftest import REPO
from test.parity.dac_reference import (
    assert_rel_close,
    copy_discriminator,
    discriminator_pairs,
    weighted_sum,
)
from test.parity.refs import require_package
from test.single_thread import one_torch_thread  # noqa: F401

dac = require_package("dac")  # skips the module outside tools/venv-compare

SR = 16000


def _models(periods, fft_sizes, dtype, **mpd):
    torch.manual_seed(0)
    ref = dac.model.Discriminator(periods=periods, fft_sizes=fft_sizes, sample_rate=SR)
    ours = DISCRIMINATORS.build(
        "dac", {"mpd": {"periods": periods, **mpd}, "mrd": {"fft_sizes": fft_sizes}}
    )
    copy_discriminator(ref, ours)
    return ref.to(dtype), ours.to(dtype)


def _wav(length, dtype, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (0.3 * torch.randn(batch, 1, length, generator=g)).to(dtype)


def _compare(ref_outs, outs, tol, what):
    assert len(outs) == len(ref_outs), what
    for k, (r, o) in enumerate(zip(ref_outs, outs)):
        assert len(o) == len(r), f"{what}[{k}]: {len(o)} vs {len(r)} outputs"
        for j, (a, b) in enumerate(zip(o, r)):
            assert_rel_close(a, b, tol, f"{what}[{k}][{j}]")


def _forward_backward(ref_fn, our_fn, ref, ours, wav, tol, grad_tol, what):
    """Run both, compare outputs (``tol``), the input's and every weight's gradient
    (``grad_tol``)."""
    x_ref, x = wav.clone().requires_grad_(), wav.clone().requires_grad_()
    ref_outs, outs = ref_fn(x_ref), our_fn(x)
    _compare(ref_outs, outs, tol, what)
    weighted_sum(ref_outs).backward()
    weighted_sum(outs).backward()
    assert_rel_close(x.grad, x_ref.grad, grad_tol, f"{what}: d/d input")
    n = 0
    for ref_name, p_ref, our_name, p in discriminator_pairs(ref, ours):
        if p_ref.grad is None:  # a sub-discriminator this call did not run
            assert p.grad is None, our_name
            continue
        assert_rel_close(p.grad, p_ref.grad, grad_tol, f"{what}: d/d {our_name} ({ref_name})")
        n += 1
    assert n > 0


@pytest.mark.parametrize("period", [2, 3, 5, 7, 11])
@pytest.mark.parametrize("length", [2310, 2311])  # 2310 = 2 * 3 * 5 * 7 * 11
def test_mpd_forward_backward_float64(period, length):
    ref, ours = _models([period], [256], torch.float64)
    wav = _wav(length, torch.float64)
    _forward_backward(
        ref.discriminators[0],
        lambda x: ours.mpd.discriminators[0](x),
        ref,
        ours,
        wav,
        1e-12,
        1e-12,
        f"MPD(p={period}, T={length})",
    )


def test_mpd_pads_a_whole_period_only_with_always_pad():
    """DAC's ``pad_to_period`` (discriminator.py:44-47) pads p - T % p, a whole period
    when p divides T; HiFi-GAN's MPD (and codectk's ``mpd`` default) pads only if needed."""
    ref, ours = _models([5], [256], torch.float64, always_pad=False)
    wav = _wav(2310, torch.float64)
    with torch.no_grad():
        ref_first = ref.discriminators[0](wav)[0]  # (B, 32, ceil(rows / 3), p)
        hifigan = ours.mpd.discriminators[0](wav)[0]
        ours.mpd.discriminators[0].always_pad = True
        dac_like = ours.mpd.discriminators[0](wav)[0]
    assert hifigan.shape[-2] == 2310 // 5 // 3 == ref_first.shape[-2] - 1  # 462 vs 463 rows
    assert_rel_close(dac_like, ref_first, 1e-12, "MPD first feature map with always_pad")
    # the `dac` discriminator turns it on unless its config says otherwise
    assert all(d.always_pad for d in DISCRIMINATORS.build("dac", {}).mpd.discriminators)


@pytest.mark.parametrize("window", [2048, 1024, 512])
def test_mrd_forward_backward_float32(window):
    ref, ours = _models([2], [window], torch.float32)
    wav = _wav(3000, torch.float32)
    _forward_backward(
        ref.discriminators[1],
        lambda x: ours.mrd.discriminators[0](x),
        ref,
        ours,
        wav,
        1e-5,
        1e-4,
        f"MRD(window={window})",
    )


def test_full_discriminator_of_the_16khz_config_float32():
    """The authors' ``Discriminator`` as conf/final/16khz.yml builds it (periods 2..11,
    windows 2048/1024/512, the five bands, sample_rate 16000) against codectk's built from
    conf/dac_16k_6kbps.yaml's discriminator_conf: DC removal and peak normalisation, then
    MPD and MRD."""
    torch.manual_seed(0)
    ref = dac.model.Discriminator(
        periods=[2, 3, 5, 7, 11], fft_sizes=[2048, 1024, 512], sample_rate=SR
    )
    conf = load_yaml(REPO / "conf" / "dac_16k_6kbps.yaml")
    ours = DISCRIMINATORS.build(conf["discriminator"], conf["discriminator_conf"])
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    copy_discriminator(ref, ours)
    wav = _wav(2310, torch.float32) + 0.05  # a DC offset for the preprocessing to remove
    _forward_backward(ref, ours, ref, ours, wav, 1e-5, 1e-4, "Discriminator")
