"""The options that make ``hifigan_msd`` and ``mpd`` AudioDec's copies: an unnormalised
MSD (``spectral_norm_first_scale: false, weight_norm: false``) and the MPD's (2, 1) logits
conv (``post_kernel_size: 2``). Against the authors' code: test/parity/test_audiodec_*."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codectk.discriminators import DISCRIMINATORS


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]


@pytest.mark.parametrize(
    "spectral_first,weight_norm,expected",
    [
        (True, True, ["spectral", "weight"]),  # HiFi-GAN's official setting (the default)
        (False, False, ["plain", "plain"]),  # AudioDec's
        (True, False, ["spectral", "plain"]),
        (False, True, ["weight", "weight"]),
    ],
)
def test_hifigan_msd_normalisation(spectral_first, weight_norm, expected):
    msd = DISCRIMINATORS.build(
        "hifigan_msd",
        {
            "scales": 2,
            "channels": 16,
            "max_channels": 64,
            "downsample_scales": [4, 1],
            "spectral_norm_first_scale": spectral_first,
            "weight_norm": weight_norm,
        },
    )
    for block, kind in zip(msd.discriminators, expected):
        for conv in _convs(block):
            names = dict(conv.named_parameters())
            found = (
                "spectral"
                if "parametrizations.weight.original" in names
                else "weight"
                if "parametrizations.weight.original0" in names
                else "plain"
            )
            assert found == kind, (kind, sorted(names))
    outs = msd(torch.randn(2, 1, 400))
    assert len(outs) == 2 and all(len(o) == 5 for o in outs)


def test_mpd_post_kernel_size():
    conf = {"periods": [2, 3], "channels": [4, 8], "strides": [3, 1], "kernel_size": 5}
    wav = torch.randn(2, 1, 300)
    default = DISCRIMINATORS.build("mpd", conf)(wav)
    audiodec = DISCRIMINATORS.build("mpd", {**conf, "post_kernel_size": 2})(wav)
    for d, a in zip(default, audiodec):
        assert [x.shape for x in d[:-1]] == [x.shape for x in a[:-1]]
        b, c, t, p = d[-1].shape
        assert a[-1].shape == (b, c, t + 1, p)  # kernel 2, padding 1: one frame more
    with pytest.raises(ValueError, match="post_kernel_size must be >= 1"):
        DISCRIMINATORS.build("mpd", {**conf, "post_kernel_size": 0})
