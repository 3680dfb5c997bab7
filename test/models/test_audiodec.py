"""AudioDec: causal streaming layers, symAD / AD vocoder codecs, parameter counts against
the authors' models, MIMO shapes, two-phase training and the vocoder phase."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config, load_train_config
from codectk.errors import CodectkError
from codectk.inference import build_codec, load_codec
from codectk.models.audiodec import (
    AudioDecVocoder,
    SymAD,
    audiodec_vocoder_conf,
    symad_24k_conf,
)
from codectk.nn.conv import CausalConv1d, CausalConvTranspose1d, remove_weight_norm_
from codectk.registry import merge_sections
from codectk.streaming import Streamer
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import assert_version_1_conf_builds
from test.single_thread import one_torch_thread  # noqa: F401

TINY = REPO / "egs/mini_librispeech/codec1/conf"


def make_symad(**overrides) -> SymAD:
    """A tiny symAD (hop 24); ``overrides`` merge section by section."""
    conf = dict(
        sample_rate=16000,
        code_dim=8,
        encoder=dict(channels=4, strides=[2, 3, 2, 2]),
        decoder=dict(channels=4, strides=[2, 2, 3, 2]),
        quantizer=dict(n_codebooks=3, codebook_size=16),
    )
    return SymAD(**merge_sections(conf, overrides))


def make_vocoder(**overrides) -> AudioDecVocoder:
    """A tiny AD v1 (hop 24); ``overrides`` merge section by section."""
    conf = dict(
        sample_rate=16000,
        code_dim=8,
        encoder=dict(channels=4, strides=[2, 3, 2, 2]),
        quantizer=dict(n_codebooks=3, codebook_size=16),
        decoder=dict(
            channels=16,
            upsample_scales=[2, 2, 3, 2],
            resblock_kernel_sizes=[5],
            resblock_dilations=[[1, 3]],
            groups=3,
        ),
    )
    return AudioDecVocoder(**merge_sections(conf, overrides))


def _trained_codebooks(codec, wav):
    codec.train()
    with torch.no_grad():
        codec(wav)  # one EMA update moves the random codebooks onto the data
    return codec.eval()


@pytest.mark.parametrize(("k", "s", "d"), [(7, 1, 1), (7, 1, 9), (6, 3, 1), (10, 5, 1)])
def test_causal_conv_chunks_equal_whole_and_are_causal(k, s, d):
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, k, s, d)
    x = torch.randn(2, 3, 150)
    y = conv(x)
    assert y.shape == (2, 5, 50 if s == 3 else (30 if s == 5 else 150))
    state, parts = conv.init_state(2), []
    cuts = [0, 0, 15, 30, 45, 90, 105, 150]  # chunk lengths: multiples of the stride
    for a, b in zip(cuts, cuts[1:]):
        part, state = conv.forward_chunk(x[..., a:b], state)
        parts.append(part)
    torch.testing.assert_close(torch.cat(parts, -1), y, rtol=1e-5, atol=1e-6)
    x2 = x.clone()
    x2[..., 90:] += 1.0  # the future changes nothing before frame 90 // s
    torch.testing.assert_close(conv(x2)[..., : 90 // s], y[..., : 90 // s])


def test_causal_transposed_conv_chunks_equal_whole():
    torch.manual_seed(0)
    up = CausalConvTranspose1d(4, 3, 8, 4)
    x = torch.randn(2, 4, 20)
    y = up(x)
    assert y.shape == (2, 3, 80)
    state, parts = up.init_state(2), []
    for a, b in [(0, 1), (1, 2), (2, 13), (13, 20)]:
        part, state = up.forward_chunk(x[..., a:b], state)
        parts.append(part)
    torch.testing.assert_close(torch.cat(parts, -1), y, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 \\* stride"):
        CausalConvTranspose1d(4, 3, 7, 4)


@pytest.mark.parametrize("kind", ["symad", "audiodec"])
def test_codec_streaming_equals_whole_utterance(kind):
    torch.manual_seed(0)
    codec = make_symad() if kind == "symad" else make_vocoder()
    if kind == "audiodec":
        import numpy as np

        codec.set_code_stats_(np.full(8, 0.1, np.float32), np.full(8, 2.0, np.float32))
    wav = 0.3 * torch.randn(1, 1, 24 * 30)  # hop 24
    codec = _trained_codebooks(codec, wav)
    with torch.inference_mode():
        codes = codec.encode(wav)
        ref = codec.decode(codes)
    for fold in (False, True):  # weight norm as trained, then folded
        streamer, cs, ys = Streamer(remove_weight_norm_(codec) if fold else codec, 48), [], []
        for a, b in [(0, 10), (10, 48), (48, 300), (300, 301), (301, 720)]:
            c = streamer.encode(wav[..., a:b])
            cs.append(c)
            ys.append(streamer.decode(c))
        assert torch.equal(torch.cat(cs, -1), codes)
        torch.testing.assert_close(torch.cat(ys, -1), ref, rtol=1e-4, atol=1e-6)


def test_paper_size_parameter_counts_match_the_authors():
    symad = build_codec(REPO / "conf/symAD_vctk_48000_hop300.yaml")
    assert sum(p.numel() for p in symad.parameters() if p.requires_grad) == 7_939_936
    assert all(not any(True for _ in layer.parameters()) for layer in symad.quantizer.layers)
    assert symad.bitrate() == pytest.approx(12.8) and symad.hop_length == 300
    assert build_codec(REPO / "conf/symAD_libritts_24000_hop300.yaml").bitrate() == pytest.approx(
        6.4
    )
    v1 = build_codec(REPO / "conf/AudioDec_v1_symAD_vctk_48000_hop300_clean.yaml")
    assert sum(p.numel() for p in v1.decoder.parameters()) == 19_461_090
    names = {n.rsplit(".", 1)[-1] for n, _ in v1.decoder.named_parameters()}
    assert {"original0", "original1"} <= names  # weight-normalised (g, v)


def test_mimo_shapes():
    codec = make_symad(input_channels=2, output_channels=3).eval()
    wav = torch.randn(2, 2, 100)
    codes = codec.encode(wav)
    assert codes.shape == (2, 3, 5)  # ceil(100 / 24)
    assert codec.decode(codes).shape == (2, 3, 120)
    streamer = Streamer(codec, 48, batch=2)
    assert streamer(wav[..., :48]).shape == (2, 3, 48)
    with pytest.raises(ValueError, match="\\(B, 2"):
        codec.encode(torch.randn(1, 1, 100))
    voc = make_vocoder(input_channels=2, output_channels=2).eval()
    assert voc.decode(voc.encode(wav)).shape == (2, 2, 120)


def test_vocoder_needs_code_stats(tmp_path: Path):
    voc = make_vocoder(stats=str(tmp_path / "missing.npy"))  # warns, does not fail to build
    with pytest.raises(CodectkError, match="code statistics not loaded"):
        voc.on_train_step(1)
    with pytest.raises(ValueError, match="not supported"):
        audiodec_vocoder_conf("v9")


# version-1 (flat) codec_conf of the paper-size configs, written out literally
SYMAD_24K_FLAT = {
    "sample_rate": 24000,
    "input_channels": 1,
    "output_channels": 1,
    "encode_channels": 32,
    "decode_channels": 32,
    "code_dim": 64,
    "codebook_num": 8,
    "codebook_size": 1024,
    "enc_ratios": [2, 4, 8, 16],
    "dec_ratios": [16, 8, 4, 2],
    "enc_strides": [3, 4, 5, 5],
    "dec_strides": [5, 5, 4, 3],
    "ema_decay": 0.8,
    "kmeans_init": False,
    "threshold_ema_dead_code": 0.0,
    "ema_init": "unweighted",
    "random_init": "normal",
}
AUDIODEC_V0_FLAT = {
    "sample_rate": 48000,
    "encode_channels": 32,
    "code_dim": 64,
    "codebook_num": 8,
    "codebook_size": 1024,
    "enc_ratios": [2, 4, 8, 16],
    "enc_strides": [3, 4, 5, 5],
    "ema_decay": 0.8,
    "vocoder_channels": 512,
    "vocoder_kernel_size": 7,
    "upsample_scales": [5, 5, 4, 3],
    "resblock_kernel_sizes": [3, 7, 11],  # dilations left to their default, per kernel
    "groups": 1,
}


@pytest.mark.parametrize(
    ("codec", "flat", "new"),
    [
        (
            "symad",
            SYMAD_24K_FLAT,
            symad_24k_conf(quantizer=dict(ema_init="unweighted", random_init="normal")),
        ),
        ("audiodec", AUDIODEC_V0_FLAT, audiodec_vocoder_conf("v0")),
    ],
)
def test_version_1_flat_config_builds_the_preset(codec, flat, new):
    """A flat (version 1) codec_conf loads through build_train_config into the sections
    and builds the codec the preset builds: same parameter names, order and values."""
    conf = assert_version_1_conf_builds(codec, flat, new)
    assert "quantizer" in conf and "codebook_num" not in conf


def test_section_errors_name_the_place():
    """A wrong key or size names its codec_conf section."""
    with pytest.raises(
        ValueError, match=r"codec_conf\.quantizer: unknown key\(s\) \['codebook_num'\]"
    ):
        make_symad(quantizer=dict(codebook_num=2))
    with pytest.raises(ValueError, match=r"codec_conf\.encoder: unknown key"):
        make_vocoder(encoder=dict(enc_strides=[2, 3, 2, 2]))
    with pytest.raises(ValueError, match=r"codec_conf\.decoder\.strides \[2, 3, 2\]"):
        make_symad(decoder=dict(strides=[2, 3, 2], channel_ratios=[4, 2, 1]))
    with pytest.raises(ValueError, match=r"codec_conf\.decoder\.upsample_scales"):
        make_vocoder(decoder=dict(upsample_scales=[2, 2, 3]))
    with pytest.raises(ValueError, match=r"codec_conf\.encoder: channel_ratios .* differ"):
        make_symad(encoder=dict(channel_ratios=[2, 4]))


def _tiny_conf(path: Path, **overrides) -> dict:
    conf = load_train_config(path).to_dict()
    tiny = dict(encoder=dict(channels=4), code_dim=8, quantizer=dict(codebook_size=32))
    if conf["codec"] == "symad":
        tiny["decoder"] = dict(channels=4)
    conf["codec_conf"] = merge_sections(conf["codec_conf"], tiny)
    conf["discriminator_conf"] = {
        "discriminators": {
            "mpd": {"periods": [2, 3], "channels": [4, 8], "strides": [3, 1]},
        }
    }
    conf.update(
        batch_size=2,
        segment_duration=0.2,
        valid_interval=4,
        log_interval=2,
        keep_nbest_models=1,
        valid_max_duration=0.5,
    )
    conf.update(overrides)
    return conf


def test_two_phases_then_vocoder_on_code_stats(tmp_path: Path, dumped):
    from codectk.bin import code_stats

    conf = _tiny_conf(
        TINY / "symAD_16k_tiny.yaml", max_steps=4, discriminator_start_step=3, freeze_from_step=3
    )
    t = Trainer(build_train_config(conf), tmp_path / "symad", dumped["train"], dumped["valid"])
    snaps, orig = {}, t._train_step

    def spy(batch):  # the state before step t.step
        snaps[t.step] = {
            k: v.clone() for k, v in t.codec.state_dict().items() if not k.startswith("decoder")
        }
        snaps[f"dec{t.step}"] = {
            k: v.clone() for k, v in t.codec.state_dict().items() if k.startswith("decoder")
        }
        return orig(batch)

    t._train_step = spy
    t.run()
    history = [r for r in t.history if r["phase"] == "train"]
    assert "d_total" not in history[0] and "d_total" in history[-1]  # steps 1-2: metric only
    final = t.codec.state_dict()
    for k, v in snaps[3].items():  # analysis frozen from step 3 on (EMA codebooks too)
        torch.testing.assert_close(final[k], v, rtol=0, atol=0)
    assert any(not torch.equal(snaps[1][k], snaps[3][k]) for k in snaps[1])  # phase 1 learns it
    assert any(not torch.equal(final[k], v) for k, v in snaps["dec3"].items())

    stats = tmp_path / "symad" / "code_stats.npy"
    code_stats.main(
        ["--model", str(tmp_path / "symad"), "--data", str(dumped["train"]), "--out", str(stats)]
    )
    import numpy as np

    arr = np.load(stats)
    assert arr.shape == (2, 8) and (arr[1] > 0).all()
    code_stats.main(
        [
            "--model",
            str(tmp_path / "symad"),
            "--data",
            str(dumped["train"]),
            "--out",
            str(tmp_path / "s.json"),
        ]
    )
    import json

    assert np.allclose(json.loads((tmp_path / "s.json").read_text())["mean"], arr[0], atol=1e-6)

    vconf = _tiny_conf(
        TINY / "AudioDec_v1_symAD_16k_tiny.yaml",
        max_steps=2,
        discriminator_start_step=1,
        init_from=str(tmp_path / "symad"),
    )
    vconf["codec_conf"]["stats"] = str(stats)
    v = Trainer(build_train_config(vconf), tmp_path / "voc", dumped["train"], dumped["valid"])
    symad = load_codec(tmp_path / "symad")
    for k, val in symad.state_dict().items():
        if k.startswith(("encoder", "projector", "quantizer")):
            torch.testing.assert_close(v.codec.state_dict()[k], val, rtol=0, atol=0)
    torch.testing.assert_close(v.codec.code_mean, torch.from_numpy(arr[0]))
    v.run()
    voc = load_codec(tmp_path / "voc")
    for k, val in symad.state_dict().items():  # still frozen after vocoder training
        if k.startswith(("encoder", "projector", "quantizer")):
            torch.testing.assert_close(voc.state_dict()[k], val, rtol=0, atol=0)
    wav = torch.randn(1, 1, 800) * 0.1
    assert torch.equal(voc.encode(wav), symad.encode(wav))
    assert voc.decode(voc.encode(wav)).shape == (1, 1, 800)
