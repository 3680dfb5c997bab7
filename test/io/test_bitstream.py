"""The .ctk bitstream: round trips, exact sizes, corruption, fuzzing, model identity."""

from __future__ import annotations

import importlib
import json
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codectk.io.bitstream import (
    CHUNK_OVERHEAD,
    FIXED_OVERHEAD,
    BitstreamError,
    bits_per_code,
    model_identity,
    pack_codes,
    read_bitstream,
    unpack_codes,
    write_bitstream,
)
from codectk.models import CODECS
from codectk.models.soundstream import soundstream_tiny_conf
from codectk.nn.conv import remove_weight_norm_


def _header(codebook_size: int, n_frames: int, hop: int = 320, **extra) -> dict:
    return {
        "model_id": "0123456789abcdef",
        "codec": "SoundStream",
        "sample_rate": 16000,
        "hop_length": hop,
        "codebook_size": codebook_size,
        "length": max(0, n_frames * hop - 7),
        **extra,
    }


@pytest.mark.parametrize("codebook_size", [2, 3, 256, 1000, 1024, 4096, 65536, 100_003])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_round_trip_and_exact_size(codebook_size: int, k: int):
    rng = np.random.default_rng(codebook_size + k)
    f, chunk = 157, 40
    codes = rng.integers(0, codebook_size, size=(k, f))
    codes[:, 0] = codebook_size - 1  # extreme values survive
    codes[:, 1] = 0
    data = pack_codes(codes, _header(codebook_size, f, chunk_frames=chunk))
    header, back = unpack_codes(data)
    np.testing.assert_array_equal(back, codes)
    assert back.dtype == np.int64 and back.shape == (k, f)
    assert header["n_codebooks"] == k and header["n_frames"] == f
    bits = math.ceil(math.log2(codebook_size))
    assert bits_per_code(codebook_size) == bits
    n_chunks = -(-f // chunk)
    payload = sum(-(-min(chunk, f - i * chunk) * k * bits // 8) for i in range(n_chunks))
    header_json = len(data) - FIXED_OVERHEAD - n_chunks * CHUNK_OVERHEAD - payload
    assert 0 < header_json < 256  # the constant part: a small JSON header
    assert payload * 8 - f * k * bits < 8 * n_chunks  # < 1 byte of padding per chunk


def test_empty_codes_round_trip():
    data = pack_codes(np.zeros((2, 0), np.int64), _header(1024, 0))
    header, codes = unpack_codes(data)
    assert codes.shape == (2, 0) and header["length"] == 0


def test_write_read_file(tmp_path):
    codes = np.arange(24).reshape(2, 12) % 5
    n = write_bitstream(tmp_path / "sub" / "a.ctk", codes, _header(5, 12))
    assert (tmp_path / "sub" / "a.ctk").stat().st_size == n
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.ctk"]  # no temp left
    header, back = read_bitstream(tmp_path / "sub" / "a.ctk")
    np.testing.assert_array_equal(back, codes)
    with pytest.raises(BitstreamError, match="missing.ctk"):
        read_bitstream(tmp_path / "missing.ctk")


@pytest.mark.parametrize(
    ("codes", "header", "match"),
    [
        (np.full((2, 3), 1000), _header(1000, 3), r"\[0, 1000\)"),
        (np.full((2, 3), -1), _header(1000, 3), r"\[0, 1000\)"),
        (np.zeros((2, 3)), _header(1000, 3), "integer"),
        (np.zeros(3, np.int64), _header(1000, 3), "2-D"),
        (np.zeros((2, 3), np.int64), {**_header(1000, 3), "n_frames": 4}, "n_frames"),
        (np.zeros((2, 3), np.int64), _header(1, 3), "codebook_size"),
        (np.zeros((2, 3), np.int64), {**_header(8, 3), "extra": 1}, "unknown keys"),
        (np.zeros((2, 3), np.int64), {**_header(8, 3), "length": 961}, "exceeds"),
    ],
)
def test_pack_refuses(codes, header, match):
    with pytest.raises(BitstreamError, match=match):
        pack_codes(codes, header)


def _small_file() -> tuple[bytes, np.ndarray]:
    codes = np.random.default_rng(0).integers(0, 1000, size=(3, 10))
    return pack_codes(codes, _header(1000, 10, chunk_frames=4)), codes


def test_every_byte_flip_is_detected():
    data, codes = _small_file()
    undetected = 0
    for i in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= mask
            try:
                _, back = unpack_codes(bytes(bad))
            except BitstreamError:
                continue
            undetected += 1  # only acceptable where no check covers the byte
            np.testing.assert_array_equal(back, codes)
    assert undetected == 0  # every byte is covered by the magic, version or a CRC


def test_every_truncation_and_extension_is_detected():
    data, _ = _small_file()
    for n in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|magic"):
            unpack_codes(data[:n])
    with pytest.raises(BitstreamError, match="1 trailing bytes"):
        unpack_codes(data + b"\0")


def test_error_messages():
    data, _ = _small_file()
    with pytest.raises(BitstreamError, match="magic"):
        unpack_codes(b"RIFF" + data[4:])
    with pytest.raises(BitstreamError, match="version 2 not supported"):
        unpack_codes(data[:4] + b"\x02" + data[5:])
    bad = bytearray(data)
    bad[-6] ^= 1  # inside the last chunk's payload
    with pytest.raises(BitstreamError, match="CRC mismatch in chunk 2 of 3"):
        unpack_codes(bytes(bad))
    bad = bytearray(data)
    bad[20] ^= 1  # inside the JSON header
    with pytest.raises(BitstreamError, match="header CRC"):
        unpack_codes(bytes(bad))


def test_values_out_of_range_with_valid_crc():
    """A non-power-of-2 codebook leaves unused bit patterns: they are refused."""
    data = pack_codes(np.full((1, 8), 1023), _header(1024, 8))
    (n_text,) = struct.unpack_from("<I", data, 5)
    text = data[9 : 9 + n_text].replace(b'"codebook_size":1024', b'"codebook_size":1000')
    prefix = data[:5] + struct.pack("<I", len(text))
    forged = prefix + text + struct.pack("<I", zlib.crc32(prefix[4:] + text))
    forged += data[9 + n_text + 4 :]  # the chunks, CRCs still valid
    with pytest.raises(BitstreamError, match="value 1023 out of range"):
        unpack_codes(forged)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: b"CTKB\x01" + b)))
def test_fuzz_arbitrary_bytes(data: bytes):
    try:
        unpack_codes(data)
    except BitstreamError:
        pass


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _JSON,
        st.fixed_dictionaries({k: st.integers(-5, 2**33) for k in _header(8, 1)}),
        st.fixed_dictionaries(
            {**{k: st.integers(-5, 2**33) for k in _header(8, 1)}, "n_codebooks": _JSON}
        ),
    ),
    st.binary(max_size=200),
)
def test_fuzz_headers_with_valid_crc(header, tail: bytes):
    """Any JSON value behind a correct header CRC, then arbitrary chunks."""
    if isinstance(header, dict) and "model_id" in header:
        header = {**header, "model_id": "x", "codec": "y", "n_frames": 3, "chunk_frames": 2}
    text = json.dumps(header).encode()
    prefix = b"CTKB\x01" + struct.pack("<I", len(text))
    try:
        unpack_codes(prefix + text + struct.pack("<I", zlib.crc32(prefix[4:] + text)) + tail)
    except BitstreamError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_files(data):
    good, _ = _small_file()
    pos = data.draw(st.integers(0, len(good)))
    cut = data.draw(st.integers(0, 8))
    insert = data.draw(st.binary(max_size=8))
    try:
        unpack_codes(good[:pos] + insert + good[pos + cut :])
    except BitstreamError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 1 << 20),
    st.integers(1, 6),
    st.integers(0, 50),
    st.integers(1, 20),
    st.integers(0, 2**32 - 1),
)
def test_fuzz_round_trip(codebook_size: int, k: int, f: int, chunk: int, seed: int):
    codes = np.random.default_rng(seed).integers(0, codebook_size, size=(k, f))
    _, back = unpack_codes(pack_codes(codes, _header(codebook_size, f, chunk_frames=chunk)))
    np.testing.assert_array_equal(back, codes)


def test_model_identity_survives_folding_and_sees_weights():
    torch.manual_seed(0)
    codec = CODECS.build(
        "soundstream", soundstream_tiny_conf(encoder=dict(n_filters=4, dimension=16))
    ).eval()
    ident = model_identity(codec)
    assert len(ident) == 16 and ident == model_identity(codec)
    remove_weight_norm_(codec)
    assert not any(".parametrizations." in k for k in codec.state_dict())
    assert model_identity(codec) == ident
    with torch.no_grad():
        next(codec.parameters()).add_(1e-3)
    assert model_identity(codec) != ident


@pytest.mark.parametrize("name", ["soundstream", "encodec", "dac", "hificodec", "freqcodec"])
def test_fold_weight_norm_every_family(name: str):
    """Folding leaves no weight norm behind and changes neither codes, output nor identity."""
    module = importlib.import_module(f"codectk.models.{name}")
    torch.manual_seed(0)
    codec = CODECS.build(name, getattr(module, f"{name}_tiny_conf")()).eval()
    x = 0.1 * torch.randn(1, 1, 6 * codec.hop_length)
    with torch.inference_mode():
        codes, y = codec.encode(x), codec.decode(codec.encode(x))
    ident = model_identity(codec)
    remove_weight_norm_(codec)
    assert not any(".parametrizations." in k for k in codec.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(codec.encode(x), codes, rtol=0, atol=0)
        torch.testing.assert_close(codec.decode(codes), y, rtol=0, atol=1e-5)
    assert model_identity(codec) == ident
