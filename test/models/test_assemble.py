"""AutoencoderCodec.assemble: parts registered in the family's order, facts derived once."""

from __future__ import annotations

import pytest
from torch import nn

from codectk.models.base import AutoencoderCodec
from codectk.models.soundstream import SoundStream, soundstream_tiny_conf
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder
from codectk.quantization import QUANTIZERS


def _parts():
    seanet = dict(dimension=16, n_filters=2, ratios=[4, 2], lstm=0)
    quantizer = QUANTIZERS.build("rvq", dict(dimension=16, n_codebooks=3, codebook_size=32))
    return SEANetEncoder(**seanet), quantizer, SEANetDecoder(**seanet)


def test_facts_come_from_the_parts_and_the_order_is_kept():
    encoder, quantizer, decoder = _parts()
    codec = AutoencoderCodec()
    codec.assemble(8000, 1, decoder=decoder, encoder=encoder, quantizer=quantizer)
    assert (codec.hop_length, codec.n_codebooks, codec.codebook_size) == (8, 3, 32)
    assert codec.frame_rate == 1000 and codec.sample_rate == 8000
    assert [n for n, _ in codec.named_children()] == ["decoder", "encoder", "quantizer"]
    codec = AutoencoderCodec()
    codec.assemble(8000, hop_length=16, encoder=nn.Identity(), quantizer=quantizer, decoder=decoder)
    assert codec.hop_length == 16


def test_errors():
    encoder, quantizer, decoder = _parts()
    with pytest.raises(ValueError, match="needs parts \\['decoder'\\]"):
        AutoencoderCodec().assemble(8000, encoder=encoder, quantizer=quantizer)
    with pytest.raises(ValueError, match="channels must be >= 1"):
        AutoencoderCodec().assemble(8000, 0, encoder=encoder, quantizer=quantizer, decoder=decoder)
    with pytest.raises(ValueError, match="give hop_length"):
        AutoencoderCodec().assemble(
            8000, encoder=nn.Identity(), quantizer=quantizer, decoder=decoder
        )
    with pytest.raises(ValueError, match="channels must be >= 1"):
        SoundStream(**soundstream_tiny_conf(channels=0))
