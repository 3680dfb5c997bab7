"""The compiled streaming AudioDec engine (codectk.models.audiodec_compiled): chunked
output equal to whole-utterance decoding for the symAD decoder and the HiFi-GAN
vocoder, bfloat16 close to float32, and its errors. Skipped only where torch.compile
has no C++ compiler (the error the engine raises then is checked by its message)."""

from __future__ import annotations

import pytest
import torch

from codectk.errors import CodectkError
from codectk.models.audiodec_compiled import CompiledStreamingAudioDec
from test.models.test_audiodec_stream import _codec
from test.single_thread import one_torch_thread  # noqa: F401

HOP = 24  # the test codecs' hop length


def _engine(codec, chunk: int, dtype=torch.float32, **kw) -> CompiledStreamingAudioDec:
    try:  # no autotuning: it only picks faster kernels, and costs minutes here
        return CompiledStreamingAudioDec(codec, chunk, dtype, autotune=False, **kw)
    except CodectkError as e:
        if "C++ compiler" in str(e):
            pytest.skip(str(e))
        raise


def _stream(engine: CompiledStreamingAudioDec, wav: torch.Tensor):
    """wav (1, C, T), T a multiple of the chunk -> codes (K, F), output (C_out, T)."""
    cs, ys = [], []
    for a in range(0, wav.shape[-1], engine.chunk_length):
        c = engine.encode_chunk(wav[0, :, a : a + engine.chunk_length])
        cs.append(c)
        ys.append(engine.decode_chunk(c))
    return torch.cat(cs, -1), torch.cat(ys, -1)


@pytest.fixture(scope="module")
def symad_engine():
    """(engine for 96-sample chunks, codec, wav, codes, ref): compiled once (~25 s)."""
    codec, wav, codes, ref = _codec("symad")
    return _engine(codec, 4 * HOP), codec, wav, codes, ref


@pytest.mark.parametrize("kind", ["symad", "audiodec"])
def test_chunks_equal_whole_utterance(kind, symad_engine):
    if kind == "symad":
        engine, _, wav, codes, ref = symad_engine
    else:
        _, wav, codes, ref = codec_wav = _codec(kind)
        engine = _engine(codec_wav[0], 4 * HOP)
    # 720 samples = 30 frames; 96-sample chunks: 7.5 of them, padded
    x = torch.nn.functional.pad(wav, (0, 48))
    for _ in range(2):  # the second pass checks reset()
        c, y = _stream(engine, x)
        assert c.dtype == torch.long and c.shape == (3, 32)
        assert torch.equal(c[:, :30], codes[0])
        torch.testing.assert_close(y[:, :720], ref[0], rtol=1e-4, atol=1e-5)
        engine.reset()


def test_bfloat16_with_fewer_codebooks_close_to_float32():
    codec, wav, codes, _ = _codec("symad")
    with torch.inference_mode():
        ref = codec.decode(codes[:, :2])[0]  # (1, 720) from the first 2 codebooks
    engine = _engine(codec, 6 * HOP, torch.bfloat16, n_quantizers=2)
    c16, _ = _stream(engine, wav)
    assert c16.shape == (2, 30)
    assert (c16[0] == codes[0, 0]).float().mean() > 0.9  # first stage: rarely flipped
    engine.reset()
    y = torch.cat([engine.decode_chunk(codes[0, :2, f : f + 6]) for f in range(0, 30, 6)], -1)
    snr = 10 * torch.log10(ref.pow(2).sum() / (y - ref).pow(2).sum())
    assert 25 < snr < 200  # bf16 rounding only: close, not equal


def test_errors(symad_engine):
    engine, codec, *_ = symad_engine
    with pytest.raises(ValueError, match="multiple of the hop length 24"):
        CompiledStreamingAudioDec(codec, 100)
    with pytest.raises(ValueError, match="dtype"):
        CompiledStreamingAudioDec(codec, 96, torch.float16)
    with pytest.raises(TypeError, match="AudioDec codec"):
        CompiledStreamingAudioDec(torch.nn.Linear(2, 2), 96)
    with pytest.raises(ValueError, match=r"wav must be \(1, 96\)"):
        engine.encode_chunk(torch.zeros(1, 50))
    with pytest.raises(ValueError, match=r"codes must be \(3, 4\)"):
        engine.decode_chunk(torch.zeros(3, 3, dtype=torch.long))
