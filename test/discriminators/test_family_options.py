"""Options added for the FunCodec and AcademiCodec parity: MS-STFT logits pooling and the
combined discriminator's ``logits_as_features``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codectk.discriminators import DISCRIMINATORS


@pytest.fixture
def wav() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(2, 1, 3000, generator=g)


def test_ms_stft_logits_pool_pools_only_the_logits(wav):
    conf = {"n_ffts": [256, 128], "filters": 4, "max_filters": 16}
    torch.manual_seed(0)
    plain = DISCRIMINATORS.build("ms_stft", conf)
    torch.manual_seed(0)
    pooled = DISCRIMINATORS.build("ms_stft", {**conf, "logits_pool": True})
    a, b = plain(wav), pooled(wav)
    for sa, sb in zip(a, b):
        for fa, fb in zip(sa[:-1], sb[:-1]):
            assert torch.equal(fa, fb)
        # AvgPool2d(4, stride 2, padding 1, count_include_pad=False) by hand: sum / count
        ones = torch.ones_like(sa[-1])
        expect = F.avg_pool2d(sa[-1], 4, 2, 1, count_include_pad=True) / F.avg_pool2d(
            ones, 4, 2, 1, count_include_pad=True
        )
        torch.testing.assert_close(sb[-1], expect)
        frames, bins = sa[-1].shape[-2:]
        assert sb[-1].shape[-2:] == (frames // 2, bins // 2)


def test_combined_logits_as_features(wav):
    conf = {
        "mpd": {"periods": [2], "channels": [4, 8], "strides": [3, 1]},
        "ms_stft": {"n_ffts": [256], "filters": 4, "max_filters": 8},
    }
    torch.manual_seed(0)
    plain = DISCRIMINATORS.build("combined", {"discriminators": conf})
    torch.manual_seed(0)
    disc = DISCRIMINATORS.build("combined", {"discriminators": conf, "logits_as_features": ["mpd"]})
    a, b = plain(wav), disc(wav)
    assert [len(o) for o in a] == [3, 6] and [len(o) for o in b] == [4, 6]
    assert b[0][-1] is b[0][-2] and torch.equal(b[0][-1], a[0][-1])
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))  # ms_stft unchanged
    with pytest.raises(ValueError, match=r"logits_as_features \['msd'\] are not members"):
        DISCRIMINATORS.build("combined", {"discriminators": conf, "logits_as_features": ["msd"]})
