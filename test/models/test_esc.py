"""Tests of the ESC family: Swin layers against a direct Swin implementation, the
cross-scale product VQ, codec shapes for every number of streams, the training phases,
the loss, paper-size parameter counts and one Trainer run."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import codectk
from codectk.bin import ctk
from codectk.config import build_train_config, load_yaml
from codectk.features import mel_filterbank
from codectk.io.audio import read_audio
from codectk.io.bitstream import read_bitstream
from codectk.losses import LOSSES
from codectk.models import CODECS
from codectk.models.esc import ESC, esc_tiny_conf, power_law
from codectk.nn.swin import SwinStage, shift_mask
from codectk.quantization.csrvq import ProductVectorQuantizer, stream_dropout
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import assert_version_1_conf_builds
from test.models.test_soundstream import seeded_wav
from test.single_thread import one_torch_thread  # noqa: F401

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/esc_16k_tiny.yaml"


def make_esc_conf(**overrides):
    return esc_tiny_conf(**overrides)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return CODECS.build("esc", make_esc_conf()).eval()


# ----------------------------------------------------------------- Swin layers
def _reference_block(block, x, window_size, shift):
    """The authors' SwinBlock written out: pad, roll, partition, explicit softmax."""
    b, h, w, c = x.shape
    ws, attn = window_size, block.attn
    y = block.norm1(x)
    y = F.pad(y, (0, 0, 0, -w % ws, 0, -h % ws))
    hp, wp = y.shape[1:3]
    mask = shift_mask(hp, wp, ws, shift) if shift else None
    if shift:
        y = torch.roll(y, (-shift, -shift), dims=(1, 2))
    win = y.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
    n, nh = ws * ws, attn.num_heads
    qkv = attn.qkv(win).reshape(-1, n, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (c // nh) ** -0.5, qkv[1], qkv[2]
    a = q @ k.transpose(-2, -1) + attn.position_bias()[None]
    if mask is not None:
        nw = mask.shape[0]
        a = (a.view(-1, nw, nh, n, n) + mask[None, :, None]).view(-1, nh, n, n)
    out = attn.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(-1, n, c))
    out = out.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    if shift:
        out = torch.roll(out, (shift, shift), dims=(1, 2))
    x = x + out[:, :h, :w]
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("hw", [(8, 12), (2, 6), (4, 5)])
def test_swin_stage_matches_direct_implementation(hw):
    torch.manual_seed(1)
    stage = SwinStage(12, 12, num_heads=3, depth=2, window_size=4)
    x = torch.randn(2, *hw, 12)
    ref = x
    for block in stage.blocks:
        ref = _reference_block(block, ref, 4, block.shift)
    torch.testing.assert_close(stage(x), ref, rtol=1e-5, atol=1e-5)


def test_patch_merge_and_split_rescale_frequency_only():
    down = SwinStage(8, 16, num_heads=2, depth=1, scale="down")
    up = SwinStage(16, 8, num_heads=2, depth=1, scale="up")
    x = torch.randn(1, 8, 6, 8)
    assert down(x).shape == (1, 4, 6, 16)
    assert up(down(x)).shape == (1, 8, 6, 8)
    assert down(torch.randn(1, 5, 6, 8)).shape == (1, 3, 6, 16)  # odd H padded
    with pytest.raises(ValueError, match="needs a scale"):
        SwinStage(8, 16, num_heads=2)


# ----------------------------------------------------------------- quantizer
def test_product_vq_layout_codes_and_straight_through():
    torch.manual_seed(0)
    pvq = ProductVectorQuantizer(
        dim=4, n_freq=2, overlap=2, groups=3, codebook_size=16, codebook_dim=3
    )
    assert pvq.vq_dims == [5, 5, 6]  # 2 * 4 * 2 = 16 values split as the authors do
    x = torch.randn(2, 2, 6, 4, requires_grad=True)  # (B, H, W, C)
    v = pvq.to_vectors(x)
    assert v.shape == (2, 3, 16)
    # channel-major (c h) flattening of each time patch, then 2 patches per frame
    assert torch.equal(v[0, 1, :8], x[0, :, 2, :].T.reshape(-1))
    torch.testing.assert_close(pvq.from_vectors(v), x)
    out = pvq(x)
    assert out.codes.shape == (2, 3, 3) and out.z_q.shape == x.shape
    assert torch.equal(out.codes, pvq.encode(x))
    torch.testing.assert_close(pvq.decode(out.codes), out.z_q)
    assert torch.all(out.commitment_loss > 0) and out.commitment_loss.shape == (2,)
    out.z_q.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # straight-through
    bypass = pvq(x, bypass=True)
    assert torch.all(bypass.commitment_loss == 0)
    expect = [
        up(down(z)) for down, up, z in zip(pvq.down_projs, pvq.up_projs, v.split(pvq.vq_dims, -1))
    ]
    torch.testing.assert_close(bypass.z_q, pvq.from_vectors(torch.cat(expect, -1)))


def test_stream_dropout_rate():
    g = torch.Generator().manual_seed(0)
    draws = np.array([stream_dropout(6, 0.75, g) for _ in range(4000)])
    # P(6) = 0.25 + 0.75 / 6; each other count 0.75 / 6
    assert abs((draws == 6).mean() - 0.375) < 0.03
    assert abs((draws == 1).mean() - 0.125) < 0.02
    assert set(draws) == set(range(1, 7))
    assert stream_dropout(6, 0.0, g) == 6
    with pytest.raises(ValueError, match="dropout_rate"):
        stream_dropout(6, 1.5)


# ----------------------------------------------------------------- codec
@pytest.mark.parametrize("n_streams", [1, 2, 3, 4, 5, 6])
def test_encode_decode_shapes_every_stream_count(tiny, n_streams):
    wav = seeded_wav(batch=2, length=3000)  # not a multiple of 320: padded to 3200
    with torch.inference_mode():
        codes = tiny.encode(wav, 3 * n_streams)
        assert codes.shape == (2, 3 * n_streams, 10) and codes.dtype == torch.int64
        assert tiny.n_quantizers_for_bandwidth(1.5 * n_streams) == 3 * n_streams
        y = tiny.decode(codes)
        assert y.shape == (2, 1, 3200)
        out = tiny(wav, 3 * n_streams)
    assert torch.equal(out.codes, codes)
    torch.testing.assert_close(out.wav, y[..., :3000], rtol=0, atol=1e-5)
    assert tiny.bitrate(3 * n_streams) == pytest.approx(1.5 * n_streams)


def test_interface_numbers_and_errors(tiny):
    assert (tiny.hop_length, tiny.frame_rate, tiny.n_codebooks) == (320, 50.0, 18)
    assert tiny.bandwidths == pytest.approx([1.5, 3.0, 4.5, 6.0, 7.5, 9.0])
    assert tiny.codebooks_per_stream == 3
    with pytest.raises(ValueError, match=r"choose one of \[1.5, 3.0"):
        tiny.n_quantizers_for_bandwidth(2.0)
    with pytest.raises(ValueError, match="whole streams of 3 codebooks"):
        tiny.encode(seeded_wav(length=640), 4)
    with pytest.raises(ValueError, match="not a multiple of the 3"):
        tiny.decode(torch.zeros(1, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"wav must be \(B, 1, T\)"):
        tiny.encode(torch.zeros(1, 640))


def test_version_1_flat_config_builds_the_same_codec():
    """A version-1 (flat) codec_conf, as esc_tiny_conf was, reads into the sections."""
    flat = dict(
        sample_rate=16000,
        n_freq=192,
        win_length=320,
        stft_hop_length=80,
        patch_size=[3, 2],
        dims=[8, 8, 8, 8, 8, 16],
        num_heads=[2, 2, 2, 2, 2],
        depth=2,
        window_size=4,
        mlp_ratio=4.0,
        overlap=2,
        groups=3,
        codebook_size=1024,
        codebook_dims=[4, 4, 4, 4, 4, 4],
        pretrain_steps=2,
        dropout_rate=0.75,
        stft_loss_weight=1.0,
        stft_loss_power=0.3,
    )
    assert_version_1_conf_builds("esc", flat, esc_tiny_conf())


def test_sections_keep_their_defaults_and_name_their_place():
    conf = make_esc_conf(quantizer=dict(codebook_size=16))
    assert conf["quantizer"] == dict(codebook_dims=[4] * 6, codebook_size=16)
    codec = ESC(**conf)
    assert (codec.n_codebooks, codec.codebook_size, codec.hop_length) == (18, 16, 320)
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: unknown key\(s\) \['group'\]"):
        ESC(**make_esc_conf(quantizer=dict(group=2)))
    with pytest.raises(ValueError, match=r"codec_conf.encoder: unknown key\(s\) \['heads'\]"):
        ESC(**make_esc_conf(encoder=dict(heads=[2])))
    with pytest.raises(ValueError, match=r"codec_conf.encoder: .*num_heads \[2\] one per down"):
        ESC(**make_esc_conf(encoder=dict(num_heads=[2])))
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: codebook_dims \[4\] needs"):
        ESC(**make_esc_conf(quantizer=dict(codebook_dims=[4])))
    with pytest.raises(ValueError, match=r"codec_conf.quantizer: \['dropout_rate'\] are set"):
        ESC(**make_esc_conf(quantizer=dict(dropout_rate=0.5)))


def test_stft_front_end_is_invertible(tiny):
    wav = seeded_wav(batch=1, length=1280)
    feat = tiny.spectrum(wav)
    assert feat.shape == (1, 2, 192, 16)
    torch.testing.assert_close(tiny.waveform(feat), wav, rtol=0, atol=1e-5)


def test_training_phases_pretraining_then_stream_dropout():
    torch.manual_seed(0)
    codec = ESC(**make_esc_conf(pretrain_steps=2, dropout_rate=1.0)).train()
    wav = seeded_wav(batch=2, length=1280)
    codec.on_train_step(2)
    out = codec(wav)
    assert out.extras["quantizer_bypass"] and out.n_quantizers == 18
    assert out.commitment_loss == 0 and out.codebook_loss == 0
    out.wav.square().mean().backward()
    assert all(cb.weight.grad is None for q in codec.quantizer.streams for cb in q.codebooks)
    codec.on_train_step(3)
    seen = set()
    for _ in range(20):
        out = codec(wav)
        assert not out.extras["quantizer_bypass"] and out.codes.shape[1] == out.n_quantizers
        seen.add(out.n_quantizers)
    assert seen > {3, 18} and seen <= {3, 6, 9, 12, 15, 18}
    codec.eval()
    assert not codec(wav).extras["quantizer_bypass"]  # evaluation always quantizes


def test_esc_loss_matches_the_authors_formula():
    loss = LOSSES.build("esc", {"sample_rate": 16000})
    x, y = seeded_wav(batch=2, length=4000, seed=1), seeded_wav(batch=2, length=4000, seed=2)
    ref = 0.0
    for w, m in zip([32, 64, 128, 256, 512, 1024, 2048], [5, 10, 20, 40, 80, 160, 320]):
        fb = mel_filterbank(16000, w, m, htk=True, norm=None)
        win = torch.hann_window(w)

        def mel(a, fb=fb, win=win, w=w):
            s = torch.stft(a[:, 0], w, w // 4, window=win, center=True, return_complex=True)
            return fb @ s.abs()

        mx, my = mel(x), mel(y)
        ref += (mx - my).abs().mean()
        ref += (mx.clamp(1e-5).pow(2).log10() - my.clamp(1e-5).pow(2).log10()).abs().mean()
    total, parts = loss.generator(x, y, None, None, torch.tensor(2.0), torch.tensor(3.0))
    torch.testing.assert_close(parts["mel"], ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(total, 0.25 * ref + 0.25 * 2.0 + 1.0 * 3.0, rtol=1e-4, atol=1e-5)
    spec = torch.tensor([-8.0, 0.0, 1.0])
    torch.testing.assert_close(power_law(spec), torch.tensor([-(8.0**0.3), 0.0, 1.0]))


# ----------------------------------------------------------------- paper sizes
@pytest.mark.parametrize(
    "config, expected",
    [("conf/esc_16k_base.yaml", 8_736_581), ("conf/esc_16k_large.yaml", 15_580_931)],
)
def test_paper_size_parameter_counts(config, expected):
    """Counts measured from the authors' ESC class (codebooks are nn.Embedding
    parameters there too)."""
    with torch.device("meta"):
        codec = codectk.build_codec(REPO / config)
    assert sum(p.numel() for p in codec.parameters()) == expected
    assert codec.bandwidths == pytest.approx([1.5, 3.0, 4.5, 6.0, 7.5, 9.0])


def test_adversarial_config_builds():
    config = build_train_config(load_yaml(REPO / "conf/esc_16k_base_adv.yaml"))
    assert (config.discriminator, config.loss) == ("dac", "esc")
    assert config.discriminator_start_step == config.codec_conf["pretrain_steps"] + 1


# ----------------------------------------------------------------- trainer
def test_one_training_run_through_the_trainer(tmp_path: Path, dumped):
    conf = load_yaml(TINY_YAML)
    conf.update(max_steps=3, valid_interval=3, log_interval=1, batch_size=2)
    conf.update(segment_duration=0.32, valid_max_duration=0.64)
    conf["codec_conf"]["pretrain_steps"] = 1
    trainer = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    trainer.run()
    history = json.loads((tmp_path / "exp/history.json").read_text())
    train = [r for r in history if r["phase"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert train[0].get("g_codebook", 0.0) == 0.0  # step 1: pre-training, no VQ loss
    assert all(math.isfinite(r["g_stft"]) and r["g_stft"] > 0 for r in train)
    assert any(r.get("g_codebook", 0) > 0 for r in train[1:])  # quantization after step 1
    valid = [r for r in history if r["phase"] == "valid"]
    assert valid and math.isfinite(valid[-1]["mel_distance"])
    # the .ctk bitstream round-trips at 4.5 kbps (3 streams = 9 codebooks)
    wav_in = sorted(dumped["train"].parent.glob("data/*.wav"))[0]
    model = str(tmp_path / "exp")
    assert (
        ctk.main(
            ["encode", str(wav_in), str(tmp_path / "a.ctk"), "--model", model, "--bandwidth", "4.5"]
        )
        == 0
    )
    header, codes = read_bitstream(tmp_path / "a.ctk")
    assert header["n_codebooks"] == 9 and codes.shape[0] == 9
    assert (
        ctk.main(["decode", str(tmp_path / "a.ctk"), str(tmp_path / "a.wav"), "--model", model])
        == 0
    )
    codec = codectk.load_codec(model)
    with torch.inference_mode():
        ref = codec.encode(torch.from_numpy(read_audio(str(wav_in))[0])[None], 9)
    assert np.array_equal(codes, ref[0].numpy())
    assert (tmp_path / "a.wav").stat().st_size > 0
