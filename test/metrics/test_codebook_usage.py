"""Codebook usage: histogram, entropy in bits, utilisation and fraction used."""

import math

import numpy as np
import pytest

from codectk.metrics.codebook import codebook_usage


def test_uniform_codes_use_log2_size_bits():
    size = 64
    codes = np.stack([np.arange(size), np.arange(size)[::-1]])  # (K=2, F=64)
    usage = codebook_usage([codes, codes, codes], size)
    assert usage.counts.shape == (2, size) and (usage.counts == 3).all()
    np.testing.assert_allclose(usage.entropy_bits, [6.0, 6.0], atol=1e-12)
    np.testing.assert_allclose(usage.utilisation, [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(usage.fraction_used, [1.0, 1.0])
    assert usage.n_frames == 3 * size


def test_constant_code_has_zero_entropy():
    usage = codebook_usage([np.full((3, 50), 7)], 1024)
    np.testing.assert_array_equal(usage.entropy_bits, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(usage.utilisation, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(usage.fraction_used, 1 / 1024)
    assert usage.counts[:, 7].tolist() == [50, 50, 50]


def test_known_distribution_across_utterances_and_mean():
    # codebook 0: p = (1/2, 1/4, 1/4) -> 1.5 bits; codebook 1: all code 3 -> 0 bits
    utt1 = np.array([[0, 0], [3, 3]])
    utt2 = np.array([[1, 2], [3, 3]])
    usage = codebook_usage(iter([utt1, utt2]), codebook_size=4)
    np.testing.assert_allclose(usage.entropy_bits, [1.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(usage.utilisation, [0.75, 0.0], atol=1e-12)
    np.testing.assert_allclose(usage.fraction_used, [0.75, 0.25])
    d = usage.to_dict()
    assert d["n_codebooks"] == 2 and d["codebook_size"] == 4 and d["n_frames"] == 4
    assert d["per_codebook"][0] == {
        "codebook": 0,
        "entropy_bits": 1.5,
        "utilisation": 0.75,
        "fraction_used": 0.75,
    }
    assert d["mean_over_codebooks"] == pytest.approx(
        {"entropy_bits": 0.75, "utilisation": 0.375, "fraction_used": 0.5}
    )


def test_entropy_bitrate_of_uniform_codes_equals_nominal():
    rng = np.random.default_rng(0)
    size, k, frames = 16, 8, 16 * 500
    codes = np.stack(
        [rng.permutation(np.repeat(np.arange(size), frames // size)) for _ in range(k)]
    )
    usage = codebook_usage([codes], size)
    nominal = k * math.log2(size) * 75.0 / 1000
    assert usage.entropy_bitrate_kbps(75.0) == pytest.approx(nominal, rel=1e-12)


def test_codebook_usage_errors():
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        codebook_usage([np.array([[0, 8]])], 8)
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        codebook_usage([np.array([[-1, 2]])], 8)
    with pytest.raises(ValueError, match="K=3 codebooks, earlier ones K=2"):
        codebook_usage([np.zeros((2, 4), int), np.zeros((3, 4), int)], 8)
    with pytest.raises(ValueError, match="iterable was empty"):
        codebook_usage([], 8)
    with pytest.raises(ValueError, match="no frames"):
        codebook_usage([np.zeros((2, 0), int)], 8)
    with pytest.raises(ValueError, match="integer array"):
        codebook_usage([np.zeros((2, 4))], 8)
    with pytest.raises(ValueError, match="codebook_size 1 must be >= 2"):
        codebook_usage([np.zeros((2, 4), int)], 1)
