"""ESC inference paths: chunked Swin blocks and the composed patch de-embedding equal the
training path, and opt-in bfloat16 inference stays close to float32 on real speech."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import codectk.nn.swin as swin
from codectk.inference import build_codec, prepare_for_inference
from codectk.models import CODECS
from codectk.models.esc import esc_tiny_conf
from codectk.nn.swin import PatchDeEmbed, SwinStage
from test.conftest import REPO
from test.models.test_inference_precision import _snr_db, _speech
from test.single_thread import one_torch_thread  # noqa: F401

TINY_YAML = REPO / "egs/mini_librispeech/codec1/conf/esc_16k_tiny.yaml"


@pytest.mark.parametrize("hw", [(8, 12), (2, 6), (6, 10)])
def test_chunked_swin_stage_equals_training_path(hw, monkeypatch):
    torch.manual_seed(2)
    stage = SwinStage(12, 12, num_heads=3, depth=2, window_size=4)
    # a permuted (non-contiguous) input, as the quantizer hands the decoder
    x = torch.randn(2, hw[1], 12, hw[0]).permute(0, 3, 1, 2)
    ref = stage(x)  # autograd on: the training path
    monkeypatch.setattr(swin, "CHUNK_VALUES", 2048)  # several chunks of windows and rows
    with torch.inference_mode():
        fast = stage(x)
    assert fast.is_contiguous()
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "hw, patch", [((5, 7), (3, 2)), ((1, 1), (2, 3)), ((2, 3), (1, 1)), ((6, 9), (2, 2))]
)
def test_composed_patch_deembed_equals_three_steps(hw, patch):
    torch.manual_seed(3)
    layer = PatchDeEmbed(5, patch, 2)
    x = torch.randn(2, *hw, 5)
    ref = layer(x)  # 5x5 conv, pixel shuffle, 3x3 conv
    with torch.no_grad():
        fast = layer(x)  # one 7x7 conv plus exact border rows and columns
    assert fast.shape == (2, 2, hw[0] * patch[0], hw[1] * patch[1])
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_esc_inference_equals_training_path():
    torch.manual_seed(0)
    codec = CODECS.build("esc", esc_tiny_conf()).eval()
    wav = _speech(0.5)
    with torch.inference_mode():
        fast_codes = codec.encode(wav)
        fast_out = codec.decode(fast_codes)
    # autograd on: the training-path layers (with the window grids cached above)
    codes = codec.encode(wav)
    out = codec.decode(codes)
    assert out.requires_grad
    assert torch.equal(fast_codes, codes)
    torch.testing.assert_close(fast_out, out, rtol=1e-5, atol=1e-5)


def test_esc_bf16_inference_is_close_to_fp32():
    torch.manual_seed(0)
    fp32 = prepare_for_inference(build_codec(TINY_YAML))
    bf16 = prepare_for_inference(copy.deepcopy(fp32), precision="bf16")
    wav = _speech()
    with torch.inference_mode():
        codes32, codes16 = fp32.encode(wav), bf16.encode(wav)
        y32, y16 = fp32.decode(codes32), bf16.decode(codes32)
    # Swin stages in bfloat16; the quantizer (projections, codebooks) stays float32
    assert all(p.dtype == torch.bfloat16 for p in bf16.decoder.parameters())
    assert all(p.dtype == torch.bfloat16 for p in bf16.patch_deembed.parameters())
    assert all(p.dtype == torch.float32 for p in bf16.quantizer.parameters())
    assert y16.dtype == torch.float32 and y16.shape == y32.shape
    # decoding the same codes stays close to float32
    assert _snr_db(y32, y16) >= 25.0
    # stream 1 is searched on the encoder output alone; a code may flip only where the
    # float32 search had a near-tie (the tiny model's 4-dim codebooks have many): the
    # chosen codeword's cosine similarity is within 0.02 of the best one's
    stream = fp32.quantizer.streams[0]
    with torch.inference_mode():
        feat = stream.to_vectors(fp32.encoder_features(fp32.spectrum(wav))[0])
        for g, z in enumerate(feat.split(stream.vq_dims, dim=-1)):
            unit = F.normalize(stream.codebooks[g].weight, dim=-1)
            sim = F.normalize(stream.down_projs[g](z), dim=-1) @ unit.t()  # (1, F, 1024)
            best = sim.gather(-1, codes32[:, g, :, None])
            chosen = sim.gather(-1, codes16[:, g, :, None])
            assert (best - chosen).max() <= 0.02
    assert (codes16[:, :3] == codes32[:, :3]).float().mean() >= 0.5
