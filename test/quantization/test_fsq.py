"""Tests of codectk.quantization.fsq: closed-form FSQ levels, codes, gradients, registry."""

import itertools
import math

import pytest
import torch

from codectk.quantization import QUANTIZERS, FiniteScalarQuantizer

LEVELS = [3, 4, 5]  # one odd, one even, one odd: 60 codes


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP oversubscription on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_levels_and_rounding_closed_form():
    fsq = FiniteScalarQuantizer(dimension=3, levels=LEVELS)
    assert fsq.codebook_size == 60 and isinstance(fsq.project_in, torch.nn.Identity)
    x = torch.linspace(-6, 6, 2001)[:, None].expand(-1, 3)  # (N, 3)
    values = fsq.quantize(x)
    grids = [sorted(set(values[:, i].tolist())) for i in range(3)]
    assert grids[0] == [-1.0, 0.0, 1.0]  # L = 3: {-1, 0, 1}
    assert grids[1] == [-1.0, -0.5, 0.0, 0.5]  # L = 4: {-2, -1, 0, 1} / 2
    assert grids[2] == [-1.0, -0.5, 0.0, 0.5, 1.0]  # L = 5: {-2, ..., 2} / 2
    # eq. (1)-(2) by hand for odd L: round(floor(L / 2) * (1 + eps) * tanh(z)) / floor(L / 2)
    z = torch.tensor([[0.2, 0.0, 0.3], [0.6, 0.0, -0.9]])
    h = torch.tensor([1.0, 1.5, 2.0]) * (1 + 1e-3)
    expected = torch.round(h * torch.tanh(z)) / torch.tensor([1.0, 2.0, 2.0])
    assert torch.equal(fsq.quantize(z)[:, [0, 2]], expected[:, [0, 2]])
    assert torch.equal(fsq.quantize(torch.zeros(1, 3)), torch.zeros(1, 3))  # 0 is a level


def test_codes_values_bijection_and_mixed_radix():
    fsq = FiniteScalarQuantizer(dimension=3, levels=LEVELS)
    codes = torch.arange(60)
    values = fsq.codes_to_values(codes)  # (60, 3)
    assert len({tuple(v) for v in values.tolist()}) == 60
    assert torch.equal(fsq.values_to_codes(values), codes)
    # index = a_0 + 3 a_1 + 12 a_2 with digits a_i = value_i * floor(L_i / 2) + floor(L_i / 2)
    for a in itertools.product(range(3), range(4), range(5)):
        v = torch.tensor([(a[0] - 1) / 1, (a[1] - 2) / 2, (a[2] - 2) / 2])
        assert int(fsq.values_to_codes(v)) == a[0] + 3 * a[1] + 12 * a[2]
    # every quantised output is on the grid: code -> value -> code is the identity
    x = torch.randn(500, 3) * 3
    q = fsq.quantize(x)
    assert torch.equal(fsq.codes_to_values(fsq.values_to_codes(q)), q)


def test_straight_through_gradient_is_the_bound_derivative():
    fsq = FiniteScalarQuantizer(dimension=3, levels=LEVELS)
    x = torch.randn(10, 3, requires_grad=True)
    fsq.quantize(x).sum().backward()
    y = x.detach().clone().requires_grad_(True)
    (fsq.bound(y) / fsq.half_width).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)
    assert (x.grad > 0).all()


def test_encode_decode_forward_shapes_and_projection():
    torch.manual_seed(0)
    fsq = FiniteScalarQuantizer(dimension=16, levels=[8, 5, 5, 5], n_codebooks=3)
    z = torch.randn(2, 16, 7)
    out = fsq(z)
    assert out.codes.shape == (2, 3, 7) and out.codes.dtype == torch.long
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < 1000 == fsq.codebook_size
    assert out.commitment_loss.item() == 0 and out.codebook_loss.item() == 0
    assert torch.equal(fsq.encode(z), out.codes)
    torch.testing.assert_close(fsq.decode(out.codes), out.z_q, rtol=0, atol=1e-6)
    # K' < K: the left-out groups decode as the centre level 0
    two = fsq(z, n_quantizers=2)
    assert torch.equal(two.codes, out.codes[:, :2])
    torch.testing.assert_close(fsq.decode(two.codes), two.z_q, rtol=0, atol=1e-6)
    first = fsq.codes_to_values(out.codes[:, 0].transpose(0, 1))  # (F, B, 4) values
    by_hand = torch.cat([first, torch.zeros(7, 2, 8)], dim=-1)  # groups 2, 3 -> 0
    expected = fsq.project_out(by_hand).permute(1, 2, 0)  # (F, B, D) -> (B, D, F)
    torch.testing.assert_close(fsq.decode(out.codes[:, :1]), expected, rtol=0, atol=1e-6)
    z = z.clone().requires_grad_(True)
    fsq(z).z_q.sum().backward()
    assert z.grad.abs().sum() > 0
    assert math.log2(fsq.codebook_size) == pytest.approx(9.97, abs=0.01)


def test_bad_arguments_raise_and_registry():
    with pytest.raises(
        ValueError, match=r"levels must be a non-empty list of ints >= 2, got \[1, 3\]"
    ):
        FiniteScalarQuantizer(levels=[1, 3])
    fsq = QUANTIZERS.build("fsq", {"dimension": 4, "levels": [5, 5], "n_codebooks": 2})
    assert isinstance(fsq, FiniteScalarQuantizer) and fsq.codebook_size == 25
    with pytest.raises(ValueError, match="n_quantizers 3 not supported; choose 1 to 2"):
        fsq.encode(torch.zeros(1, 4, 2), 3)
    with pytest.raises(ValueError, match=r"z must be \(B, 4, F\)"):
        fsq(torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['codebook_size'\]"):
        QUANTIZERS.build("fsq", {"codebook_size": 1000})
