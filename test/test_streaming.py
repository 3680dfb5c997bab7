"""codectk.streaming: every causal family streamed chunk by chunk equals whole-utterance
decoding (codes equal, waveform within 1e-5), for irregular chunk lengths, uncompiled and
compiled; bfloat16 close to float32; the errors.

Compiled tests skip only where torch.compile has no C++ compiler (the error the Streamer
raises then is checked by its message)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codectk.errors import CodectkError
from codectk.models.audiodec import AudioDecVocoder, audiodec_vocoder_conf
from codectk.models.dac import DAC, dac_tiny_conf
from codectk.models.encodec import EnCodec, encodec_tiny_conf
from codectk.models.soundstream import SoundStream, soundstream_tiny_conf
from codectk.nn.conv import remove_weight_norm_
from codectk.streaming import Streamer, chunk_samples, measure_latency
from test.models.test_audiodec import make_symad, make_vocoder
from test.single_thread import one_torch_thread  # noqa: F401

ATOL = 1e-5  # waveform tolerance (float rounding of a different summation order)


def _vocoder(version: str) -> AudioDecVocoder:
    """A tiny AD v0 / v1 / v2 (the layout of ``audiodec_vocoder_conf``), hop 24."""
    layout = audiodec_vocoder_conf(version, 16000)
    layout["decoder"]["resblock_dilations"] = [[1, 3]] * len(
        layout["decoder"]["resblock_kernel_sizes"]
    )
    codec = make_vocoder(**layout)
    codec.set_code_stats_(np.full(8, 0.1, np.float32), np.full(8, 2.0, np.float32))
    return codec


FAMILIES = {
    "soundstream": lambda: SoundStream(**soundstream_tiny_conf()),
    "encodec": lambda: EnCodec(**encodec_tiny_conf()),  # reflect-padded start, LSTM
    "encodec_zero_pad": lambda: EnCodec(
        **encodec_tiny_conf(encoder={"causal_pad_mode": "constant"})
    ),
    "encodec_stereo": lambda: EnCodec(**encodec_tiny_conf(channels=2)),
    "symad": make_symad,
    "symad_mimo": lambda: make_symad(input_channels=2, output_channels=2),
    "audiodec_v0": lambda: _vocoder("v0"),  # multi-receptive-field fusion
    "audiodec_v1": lambda: _vocoder("v1"),  # multi-group block, kernel 11
    "audiodec_v2": lambda: _vocoder("v2"),  # multi-group block, kernel 3
}


def _codec(kind: str, length_hops: float = 13.6):
    """A tiny codec with codebooks moved onto the data, its input (1, C, T) with T not a
    multiple of the hop, and the whole-utterance codes and waveform."""
    torch.manual_seed(0)
    codec = FAMILIES[kind]()
    wav = 0.3 * torch.randn(1, codec.channels, int(length_hops * codec.hop_length))
    codec.train()
    with torch.no_grad():
        codec(wav)  # one EMA update moves the codebooks onto the data
    codec.eval()
    with torch.inference_mode():
        codes = codec.encode(wav)
        ref = codec.decode(codes)
    return codec, wav, codes, ref


def _stream(streamer: Streamer, wav: torch.Tensor, cuts: list[int]):
    cs, ys = [], []
    for a, b in zip(cuts, cuts[1:]):
        c = streamer.encode(wav[..., a:b])
        cs.append(c)
        ys.append(streamer.decode(c))
    c, y = streamer.flush()
    return torch.cat([*cs, c], -1), torch.cat([*ys, y], -1)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_irregular_chunks_equal_whole_utterance(kind):
    codec, wav, codes, ref = _codec(kind)
    hop, t = codec.hop_length, wav.shape[-1]
    # shorter than a hop, empty, a hop and one, several hops, the rest (not whole hops)
    cuts = [0, 5, 5, hop + 1, 4 * hop, 4 * hop + 3, 9 * hop - 1, t]
    for fold in (False, True):  # as trained (weight norm), then folded for inference
        streamer = Streamer(remove_weight_norm_(codec) if fold else codec, 2 * hop)
        for _ in range(2):  # the second pass checks reset()
            c, y = _stream(streamer, wav, cuts)
            assert c.dtype == torch.long and torch.equal(c, codes)
            assert y.shape == ref.shape
            torch.testing.assert_close(y, ref, rtol=0, atol=ATOL)
            streamer.reset()
    # the whole-signal helper: chunks of 12.5 ms (not whole hops for every family)
    streamer = Streamer(codec, chunk_samples(12.5, codec.sample_rate))
    c, y, times = streamer.stream(wav)
    assert torch.equal(c, codes) and len(times) == -(-t // streamer.chunk)
    torch.testing.assert_close(y, ref[..., :t], rtol=0, atol=ATOL)


def test_encodec_shorter_than_its_start_is_flushed():
    """EnCodec's decoder waits for 7 frames (reflect padding of its first conv); a
    4-frame utterance comes out at the flush, as whole-utterance decoding gives it."""
    codec, wav, codes, ref = _codec("encodec", length_hops=3.5)
    streamer = Streamer(codec, codec.hop_length)
    c, y = _stream(streamer, wav, [0, codec.hop_length, wav.shape[-1]])
    assert torch.equal(c, codes) and codes.shape[-1] == 4
    torch.testing.assert_close(y, ref, rtol=0, atol=ATOL)
    streamer.reset()
    assert streamer(wav[..., : 3 * codec.hop_length]).shape[-1] == 0  # held back so far


@pytest.mark.parametrize("kind", ["symad", "encodec"])
def test_bfloat16_close_to_float32(kind):
    codec, wav, codes, ref = _codec(kind)
    streamer = Streamer(codec, codec.hop_length, dtype=torch.bfloat16)
    c, _ = _stream(streamer, wav, [0, 100, wav.shape[-1]])
    assert c.shape == codes.shape
    assert (c[:, 0] == codes[:, 0]).float().mean() > 0.9  # first stage: rarely flipped
    streamer.reset()
    y = torch.cat([streamer.decode(codes), streamer.flush()[1]], -1)  # float32 codes
    assert y.dtype == torch.float32
    snr = 10 * torch.log10(ref.pow(2).sum() / (y - ref).pow(2).sum())
    assert 25 < snr < 200  # bf16 rounding: close, not equal
    assert next(codec.encoder.parameters()).dtype == torch.float32  # the codec is untouched


def _compiled(codec, chunk: int, **kw) -> Streamer:
    try:  # no autotuning: it only picks faster kernels, and costs minutes here
        return Streamer(codec, chunk, compile=True, autotune=False, **kw)
    except CodectkError as e:
        if "C++ compiler" in str(e):
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize("kind", ["symad", "encodec"])
def test_compiled_chunks_equal_whole_utterance(kind):
    codec, wav, codes, ref = _codec(kind)
    codec = remove_weight_norm_(codec)
    hop = codec.hop_length
    streamer = _compiled(codec, 4 * hop)
    assert streamer.compile_seconds > 0
    for _ in range(2):  # the second pass checks reset(); EnCodec starts uncompiled
        c, y = _stream(streamer, wav, [0, 3 * hop + 7, 8 * hop, wav.shape[-1]])
        assert torch.equal(c, codes)
        torch.testing.assert_close(y, ref, rtol=0, atol=ATOL)
        streamer.reset()
    with pytest.raises(CodectkError, match=f"multiple of the hop length {hop}"):
        Streamer(codec, hop + 1, compile=True)


def test_errors():
    codec, wav, *_ = _codec("symad")
    with pytest.raises(CodectkError, match="DAC cannot stream: DAC.encoder.block.0: a non-causal"):
        Streamer(DAC(**dac_tiny_conf()).eval(), 100)
    with pytest.raises(CodectkError, match="EnCodec cannot stream: .*non-causal"):
        Streamer(EnCodec(**encodec_tiny_conf(encoder={"causal": False})).eval(), 320)
    with pytest.raises(CodectkError, match="causal codec, got Linear"):
        Streamer(torch.nn.Linear(2, 2), 10)
    with pytest.raises(CodectkError, match="eval mode"):
        Streamer(codec.train(), 24)
    codec.eval()
    with pytest.raises(CodectkError, match="dtype torch.float16 not supported"):
        Streamer(codec, 24, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"wav must be \(1, 1, L\)"):
        Streamer(codec, 24).encode(torch.zeros(1, 2, 24))
    with pytest.raises(ValueError, match="code values"):
        Streamer(codec, 24).decode(torch.full((1, 3, 2), 99))
    with pytest.raises(CodectkError, match="whole number of samples"):
        chunk_samples(0.01, 16000)


def test_measure_latency_row():
    codec, wav, *_ = _codec("symad", length_hops=40)
    r = measure_latency(codec, wav[0], 3.0, warmup_s=0.01)  # 48-sample chunks at 16 kHz
    assert (
        r["chunks"] == (960 - 144) // 48
        and r["chunk_ms"] == 3.0
        and r["algorithmic_delay_ms"] == 3.0
    )
    assert r["precision"] == "fp32" and not r["compiled"] and r["mean_ms"] > 0
    assert Streamer(codec, 40).delay == 40 + 24 - 8  # a hop waits for the next chunk
