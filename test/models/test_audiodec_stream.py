"""The fast streaming AudioDec engine (codectk.models.audiodec_stream): chunked output
equal to whole-utterance decoding for irregular chunk lengths, both GEMM back-ends,
bfloat16 close to float32, its sliding window buffer and its errors."""

from __future__ import annotations

import pytest
import torch

from codectk.models.audiodec_stream import StreamingAudioDec, _Window, onednn_available
from codectk.nn.conv import remove_weight_norm_
from test.models.test_audiodec import _trained_codebooks, make_symad, make_vocoder
from test.single_thread import one_torch_thread  # noqa: F401

GEMMS = ["blas"] + (["onednn"] if onednn_available() else [])
# chunk lengths (hop 24): shorter than a frame, empty, longer than the context, uneven
CUTS = [0, 5, 5, 29, 48, 49, 120, 121, 300, 301, 500, 720]


def _codec(kind: str):
    torch.manual_seed(0)
    if kind == "symad":
        codec = make_symad()
    elif kind == "symad_mimo":  # AudioDec's MIMO: 2 input and 2 output channels
        codec = make_symad(input_channels=2, output_channels=2)
    else:
        codec = make_vocoder()
        codec.set_code_stats_(torch.full((8,), 0.1).numpy(), torch.full((8,), 2.0).numpy())
    wav = 0.3 * torch.randn(1, codec.channels, 720)  # (1, input_channels, T)
    codec = remove_weight_norm_(_trained_codebooks(codec, wav))
    with torch.inference_mode():
        codes = codec.encode(wav)
        ref = codec.decode(codes)
    return codec, wav, codes, ref


def _stream(fast: StreamingAudioDec, wav: torch.Tensor):
    cs, ys = [], []
    for a, b in zip(CUTS, CUTS[1:]):
        c = fast.encode_chunk(wav[0, :, a:b])
        assert c.dtype == torch.long and c.shape[0] == 3
        cs.append(c)
        ys.append(fast.decode_chunk(c))
    return torch.cat(cs, -1), torch.cat(ys, -1)


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("kind", ["symad", "symad_mimo", "audiodec"])
def test_irregular_chunks_equal_whole_utterance(kind, gemm):
    codec, wav, codes, ref = _codec(kind)
    fast = StreamingAudioDec(codec, gemm=gemm)
    for _ in range(2):  # the second pass checks reset()
        c, y = _stream(fast, wav)
        assert torch.equal(c, codes[0])
        torch.testing.assert_close(y, ref[0], rtol=1e-4, atol=1e-5)
        fast.reset()


@pytest.mark.parametrize("gemm", GEMMS)
def test_bfloat16_close_to_float32(gemm):
    codec, wav, codes, ref = _codec("symad")
    fast = StreamingAudioDec(codec, torch.bfloat16, gemm)
    c, _ = _stream(fast, wav)
    assert c.shape == codes[0].shape
    assert (c[0] == codes[0, 0]).float().mean() > 0.9  # first stage: rarely flipped
    # decoding the float32 codes in bf16: only the layers' rounding differs
    fast.reset()
    y = fast.decode_chunk(codes[0])
    assert y.dtype == torch.float32
    snr = 10 * torch.log10(ref.pow(2).sum() / (y - ref[0]).pow(2).sum())
    assert snr > 25


def test_window_appends_compacts_and_grows():
    win = _Window(2, torch.float32, spare=2)
    win.reset(3)  # 3 zero rows of left padding
    assert (win.lo, win.hi) == (0, 3) and not win.buf[:3].any()
    win.append(4).fill_(1.0)  # grows: 3 held + 2 * 4 spare
    assert win.buf.shape[0] == 11 and (win.lo, win.hi) == (0, 7)
    win.lo = 5  # the consumer used 5 rows
    win.append(4).fill_(2.0)  # fits: 7 + 4 <= 11
    assert (win.lo, win.hi) == (5, 11)
    win.lo = 9
    rows = win.append(3)  # end reached: the 2 held rows move to the front
    rows.fill_(3.0)
    assert (win.lo, win.hi) == (0, 5) and win.buf.shape[0] == 11
    assert win.buf[:5, 0].tolist() == [2.0, 2.0, 3.0, 3.0, 3.0]


def test_errors():
    codec, *_ = _codec("symad")
    with pytest.raises(ValueError, match="dtype"):
        StreamingAudioDec(codec, torch.float16)
    with pytest.raises(ValueError, match="gemm 'mkl' not supported"):
        StreamingAudioDec(codec, gemm="mkl")
    with pytest.raises(TypeError, match="AudioDec codec"):
        StreamingAudioDec(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="wav must be"):
        StreamingAudioDec(codec).encode_chunk(torch.zeros(2, 10))
