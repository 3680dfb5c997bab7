"""Discriminator output structure, gradients, scales and the combined registry wrapper."""

from __future__ import annotations

import pytest
import torch

from codectk.discriminators import DISCRIMINATORS, CombinedDiscriminator


def make_msd_conf(**overrides):
    conf = {
        "scales": 3,
        "channels": 4,
        "max_channels": 32,
        "downsample_scales": [4, 4],
        "channels_per_group": 4,
    }
    return {**conf, **overrides}


def make_hifigan_msd_conf(**overrides):
    conf = {"scales": 3, "channels": 16, "max_channels": 64, "downsample_scales": [4, 4, 1]}
    return {**conf, **overrides}


def make_mpd_conf(**overrides):
    conf = {"periods": [2, 3], "channels": [4, 8, 8], "strides": [3, 3, 1]}
    return {**conf, **overrides}


def make_stft_conf(**overrides):
    conf = {"n_fft": 256, "hop_length": 64, "channels": 4}
    return {**conf, **overrides}


def make_ms_stft_conf(**overrides):
    conf = {"n_ffts": [256, 128, 64], "filters": 4, "max_filters": 16}
    return {**conf, **overrides}


CONFS = {
    "msd": make_msd_conf,
    "hifigan_msd": make_hifigan_msd_conf,
    "mpd": make_mpd_conf,
    "stft": make_stft_conf,
    "ms_stft": make_ms_stft_conf,
}
N_SUB = {"msd": 3, "hifigan_msd": 3, "mpd": 2, "stft": 1, "ms_stft": 3}


@pytest.fixture
def wav():
    gen = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(2, 1, 2000, generator=gen)


@pytest.mark.parametrize("name", sorted(CONFS))
def test_output_structure_and_gradients(name, wav):
    torch.manual_seed(0)
    disc = DISCRIMINATORS.build(name, CONFS[name]())
    wav = wav.clone().requires_grad_(True)
    outs = disc(wav)
    assert isinstance(outs, list) and len(outs) == N_SUB[name]
    for sub in outs:
        assert isinstance(sub, list) and len(sub) >= 2
        assert all(isinstance(t, torch.Tensor) and t.shape[0] == 2 for t in sub)
        assert all(torch.isfinite(t).all() for t in sub)
        assert sub[-1].shape[1] == 1  # logits: one channel
        assert sub[-2].shape[1] > 1  # the last feature map is wider
    sum(t.mean() for sub in outs for t in sub).backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all()
    assert wav.grad.abs().sum() > 0


def test_msd_scales_see_downsampled_input(wav):
    disc = DISCRIMINATORS.build("msd", make_msd_conf())
    outs = disc(wav)
    first_maps = [sub[0].shape[-1] for sub in outs]
    logits = [sub[-1].shape[-1] for sub in outs]
    assert first_maps == [2000, 1001, 501]  # AvgPool1d(4, 2, padding=2) halves each time
    assert logits[0] > logits[1] > logits[2]


def norm_kinds(block):
    return {
        type(p).__name__
        for m in block.modules()
        if hasattr(m, "parametrizations")
        for p in m.parametrizations["weight"]
    }


@pytest.mark.parametrize(
    "name, conf",
    [
        ("msd", make_msd_conf(spectral_norm_first_scale=True)),
        ("hifigan_msd", make_hifigan_msd_conf()),  # spectral first scale by default
    ],
)
def test_msd_spectral_norm_first_scale_only(name, conf):
    disc = DISCRIMINATORS.build(name, conf)
    kinds = [norm_kinds(block) for block in disc.discriminators]
    assert kinds[0] == {"_SpectralNorm"}
    assert all(k == {"_WeightNorm"} for k in kinds[1:])


def test_hifigan_msd_layers_are_hifigan_v1():
    # Kong et al. 2020, official DiscriminatorS: (in, out, kernel, stride, groups) per conv.
    expected = [
        (1, 128, 15, 1, 1),
        (128, 128, 41, 2, 4),
        (128, 256, 41, 2, 16),
        (256, 512, 41, 4, 16),
        (512, 1024, 41, 4, 16),
        (1024, 1024, 41, 1, 16),
        (1024, 1024, 5, 1, 1),
        (1024, 1, 3, 1, 1),
    ]
    disc = DISCRIMINATORS.build("hifigan_msd", {})
    for block in disc.discriminators:
        convs = [*block.layers, block.post]
        got = [
            (c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs
        ]
        assert got == expected
        assert all(c.padding[0] == c.kernel_size[0] // 2 for c in convs)


def test_hifigan_msd_parameter_count_as_audiodec():
    # AudioDec's discriminator_params (strides [4, 4, 4, 4, 1]) give the same layer shapes
    # as HiFi-GAN V1. Per scale the convs hold 9,870,209 weights and biases: 2,048 +
    # 168,064 + 84,224 + 336,384 + 1,344,512 + 2,688,000 + 5,243,904 + 3,073; the two
    # weight-normed scales add one gain per output channel (4,097 each).
    disc = DISCRIMINATORS.build("hifigan_msd", {"downsample_scales": [4, 4, 4, 4, 1]})
    assert sum(p.numel() for p in disc.parameters()) == 3 * 9_870_209 + 2 * 4_097


def test_stft_logits_are_time_sequence(wav):
    disc = DISCRIMINATORS.build("stft", make_stft_conf())
    logits = disc(wav)[0][-1]
    frames = 2000 // 64 + 1
    assert logits.shape == (2, 1, frames // 8)  # three (2, 2) strides over time


def test_ms_stft_rejects_short_input():
    disc = DISCRIMINATORS.build("ms_stft", make_ms_stft_conf())
    with pytest.raises(ValueError, match="shorter than 256"):
        disc(torch.zeros(1, 1, 200))


def test_ms_stft_first_conv_is_plain_unless_norm_first_conv():
    plain = DISCRIMINATORS.build("ms_stft", make_ms_stft_conf())
    normed = DISCRIMINATORS.build("ms_stft", make_ms_stft_conf(norm_first_conv=True))
    assert "discriminators.0.convs.0.weight" in dict(plain.named_parameters())
    assert "discriminators.0.convs.1.parametrizations.weight.original0" in dict(
        plain.named_parameters()
    )
    assert "discriminators.0.convs.0.parametrizations.weight.original0" in dict(
        normed.named_parameters()
    )
    n_plain = sum(p.numel() for p in plain.parameters())
    assert sum(p.numel() for p in normed.parameters()) == n_plain + 3 * 4  # g: one per filter


@pytest.mark.parametrize("norm_first_conv", [True, False])
def test_ms_stft_checkpoints_of_either_first_conv_layout_load(wav, norm_first_conv):
    torch.manual_seed(0)
    source = DISCRIMINATORS.build("ms_stft", make_ms_stft_conf(norm_first_conv=norm_first_conv))
    target = DISCRIMINATORS.build("ms_stft", make_ms_stft_conf(norm_first_conv=not norm_first_conv))
    target.load_state_dict(source.state_dict())
    with torch.no_grad():
        for a, b in zip(source(wav), target(wav)):
            for ta, tb in zip(a, b):
                if norm_first_conv:  # (g, v) folded into the weight the normed conv used
                    assert torch.equal(tb, ta)
                else:  # w split into (||w||, w): rounding
                    torch.testing.assert_close(tb, ta, rtol=1e-6, atol=1e-7)


def test_combined_concatenates_in_order(wav):
    torch.manual_seed(0)
    conf = {"discriminators": {"msd": make_msd_conf(), "stft": make_stft_conf()}}
    combined = DISCRIMINATORS.build("combined", conf)
    assert isinstance(combined, CombinedDiscriminator)
    outs = combined(wav)
    assert len(outs) == 3 + 1
    torch.testing.assert_close(outs[0][-1], combined.discriminators["msd"](wav)[0][-1])
    torch.testing.assert_close(outs[3][-1], combined.discriminators["stft"](wav)[0][-1])


def test_combined_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"unknown discriminator 'nope'.*'msd'.*'stft'"):
        DISCRIMINATORS.build("combined", {"discriminators": {"msd": {}, "nope": {}}})


def test_combined_rejects_unknown_key_and_empty():
    with pytest.raises(ValueError, match="unknown key"):
        DISCRIMINATORS.build("combined", {"discriminators": {"msd": {"scale": 2}}})
    with pytest.raises(ValueError, match="empty"):
        DISCRIMINATORS.build("combined", {"discriminators": {}})


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="scales"):
        DISCRIMINATORS.build("msd", make_msd_conf(scales=0))
    with pytest.raises(ValueError, match="scales"):
        DISCRIMINATORS.build("hifigan_msd", make_hifigan_msd_conf(scales=0))
    with pytest.raises(ValueError, match="four odd"):
        DISCRIMINATORS.build("hifigan_msd", make_hifigan_msd_conf(kernel_sizes=[15, 41, 5]))
    with pytest.raises(ValueError, match="groups do not divide"):
        DISCRIMINATORS.build("hifigan_msd", make_hifigan_msd_conf(channels=6))
    with pytest.raises(ValueError, match="not a valid"):
        DISCRIMINATORS.build("mpd", make_mpd_conf(periods=[2.5]))
    with pytest.raises(ValueError, match="match in length"):
        DISCRIMINATORS.build("mpd", make_mpd_conf(strides=[3]))
    with pytest.raises(ValueError, match="strides"):
        DISCRIMINATORS.build("stft", make_stft_conf(multipliers=[2]))


def test_mpd_always_pad_adds_a_whole_period_when_p_divides_t():
    """DAC's MPD pads p - T % p samples even when p divides T; HiFi-GAN's (the default)
    only when needed. Elsewhere the two are the same."""
    torch.manual_seed(0)
    conf = make_mpd_conf(periods=[5], strides=[1, 3, 1])
    hifigan = DISCRIMINATORS.build("mpd", conf)
    dac_like = DISCRIMINATORS.build("mpd", {**conf, "always_pad": True})
    dac_like.load_state_dict(hifigan.state_dict())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        wav = torch.randn(2, 1, 2000, generator=g)  # 2000 = 400 periods
        a, b = hifigan(wav)[0][0], dac_like(wav)[0][0]  # first maps (B, C, rows, 5)
        assert a.shape[-2] == 400 and b.shape[-2] == 401
        torch.testing.assert_close(a[..., :398, :], b[..., :398, :], rtol=0, atol=0)
        wav = wav[..., :1998]  # not a multiple: both pad 2 samples
        for x, y in zip(hifigan(wav)[0], dac_like(wav)[0]):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
