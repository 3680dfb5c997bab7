"""The ladder of codebook counts (codectk.quantization.base.Quantizer) as every codec
family exposes it: bandwidths, their resolution, codebooks per stream and the codes check
derive from the quantizer's; and the float32 island under bf16 inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codectk.models import CODECS
from codectk.models.base import Codec
from codectk.models.dac import dac_tiny_conf
from codectk.models.encodec import encodec_tiny_conf
from codectk.models.esc import esc_tiny_conf
from codectk.models.freqcodec import freqcodec_tiny_conf
from codectk.models.hificodec import hificodec_tiny_conf
from codectk.models.soundstream import soundstream_tiny_conf
from codectk.quantization import ResidualVectorQuantizer, VectorQuantizer
from test.models.test_ladiffcodec import make_ladiff

FAMILIES = {
    "dac": (dac_tiny_conf, 1),
    "encodec": (encodec_tiny_conf, 1),
    "esc": (esc_tiny_conf, 3),
    "freqcodec": (freqcodec_tiny_conf, 1),
    "hificodec": (hificodec_tiny_conf, 2),
    "soundstream": (soundstream_tiny_conf, 1),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_codec_facts_derive_from_the_quantizer_ladder(family):
    conf, step = FAMILIES[family]
    codec = CODECS.build(family, conf())
    ladder = codec.quantizer.valid_n_quantizers
    assert ladder == list(range(step, codec.n_codebooks + 1, step))
    assert codec.valid_n_quantizers == ladder and codec.codebooks_per_stream == step
    assert codec.bandwidths == pytest.approx([codec.bitrate(n) for n in ladder])
    assert [codec.n_quantizers_for_bandwidth(b) for b in codec.bandwidths] == ladder
    for low, high in zip(codec.bandwidths, codec.bandwidths[1:]):  # between rungs: round down
        n, kbps = codec.resolve_bandwidth((low + high) / 2)
        assert (n, kbps) == (ladder[codec.bandwidths.index(low)], low)
    codec.check_codes(torch.zeros(1, ladder[0], 3, dtype=torch.long))
    if step > 1:
        with pytest.raises(ValueError, match=f"not a multiple of the {step} codebooks per"):
            codec.check_codes(torch.zeros(1, step + 1, 3, dtype=torch.long))
        with pytest.raises(ValueError, match=f"whole .*s of {step} codebooks"):
            codec.quantizer.check_n_quantizers(step + 1)


def test_ladiffcodec_offers_the_one_rung_it_is_trained_on():
    model = make_ladiff()
    assert model.valid_n_quantizers == [model.n_codebooks] == [2]
    assert model.bandwidths == pytest.approx([0.8])
    assert model.resolve_bandwidth(3.0) == (2, pytest.approx(0.8))
    with pytest.raises(ValueError, match="trained on 2 codebooks"):
        model.encode(torch.zeros(1, 1, 640), 1)


class _Body(nn.Module):
    """conv -> vector quantizer (a float32 island) -> conv."""

    def __init__(self):
        super().__init__()
        self.pre, self.post = nn.Conv1d(1, 4, 3, padding=1), nn.Conv1d(4, 1, 3, padding=1)
        self.vq = VectorQuantizer(4, 8, kmeans_init=False)

    def forward(self, x):
        z_q, codes, _ = self.vq(self.pre(x))
        return self.post(z_q), codes


class _Toy(Codec):
    sample_rate, hop_length, n_codebooks, codebook_size = 16000, 1, 1, 8

    def __init__(self):
        super().__init__()
        self.body = _Body()
        self.quantizer = ResidualVectorQuantizer(4, 1, 8)

    def low_precision_modules(self):
        return self.names

    def forward(self, x):
        return self.body(x)


def test_bf16_inference_keeps_float32_islands():
    toy = _Toy().eval()
    x = torch.randn(2, 1, 50)
    with torch.no_grad():
        y32, codes32 = toy(x)
        toy.names = ["body"]
        toy.set_inference_dtype(torch.bfloat16)
        y16, codes16 = toy(x)
    assert toy.body.pre.weight.dtype == toy.body.post.weight.dtype == torch.bfloat16
    floats = [t for t in toy.body.vq.state_dict().values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)
    assert y16.dtype == torch.float32 and codes16.shape == codes32.shape
    assert (codes16 == codes32).float().mean() > 0.5
    torch.testing.assert_close(y16, y32, rtol=0.1, atol=0.1)
    with torch.no_grad():  # back to float32: unwrapped, same outputs up to bf16 weights
        toy.set_inference_dtype(torch.float32)
        assert toy.body.pre.weight.dtype == torch.float32 and toy(x)[0].dtype == torch.float32
    toy.names = ["quantizer"]
    with pytest.raises(ValueError, match=r"\['quantizer'\] of _Toy are float32 islands"):
        toy.set_inference_dtype(torch.bfloat16)
