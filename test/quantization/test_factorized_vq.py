"""Tests of codectk.quantization.factorized_vq (DAC's factorized, L2-normalised RVQ)."""

import pytest
import torch
import torch.nn.functional as F

from codectk.quantization import QUANTIZERS
from codectk.quantization.factorized_vq import (
    FactorizedResidualVectorQuantizer,
    FactorizedVectorQuantizer,
    l2_nearest_codes,
)
from test.single_thread import one_torch_thread  # noqa: F401


def _rvq(**kw):
    torch.manual_seed(0)
    conf = dict(dimension=16, n_codebooks=3, codebook_size=32, codebook_dim=4)
    conf.update(kw)
    return QUANTIZERS.build("factorized_rvq", conf)


def test_l2_normalised_lookup_is_cosine_not_euclidean():
    codebook = torch.tensor([[1.0, 0.0], [10.0, 10.0]])
    x = torch.tensor([[1.0, 0.9]])  # Euclidean-nearest is row 0, cosine-nearest row 1
    assert int(torch.cdist(x, codebook).argmin()) == 0
    assert int(l2_nearest_codes(x, codebook)[0]) == 1
    # invariant to the scale of the inputs and of the codewords
    g = torch.Generator().manual_seed(0)
    xs, cb = torch.randn(50, 4, generator=g), torch.randn(16, 4, generator=g)
    codes = l2_nearest_codes(xs, cb)
    assert torch.equal(codes, l2_nearest_codes(xs * 7.0, cb * torch.rand(16, 1, generator=g)))
    expected = (F.normalize(xs, dim=1) @ F.normalize(cb, dim=1).t()).argmax(1)
    assert torch.equal(codes, expected)


def test_codes_shapes_range_and_encode_decode_match_forward():
    rvq = _rvq().eval()
    z = torch.randn(2, 16, 7)
    with torch.no_grad():
        out = rvq(z)
        codes = rvq.encode(z)
        z_q = rvq.decode(codes)
    assert codes.shape == (2, 3, 7) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 32
    assert torch.equal(out.codes, codes) and out.n_quantizers == 3
    torch.testing.assert_close(z_q, out.z_q, rtol=1e-5, atol=1e-6)
    assert torch.equal(rvq.encode(z, n_quantizers=2), codes[:, :2])
    with pytest.raises(ValueError, match=r"n_quantizers 4 not supported; choose 1 to 3"):
        rvq.encode(z, n_quantizers=4)
    with pytest.raises(ValueError, match=r"codes must be \(B, K', F\)"):
        rvq.decode(torch.zeros(2, 4, 7, dtype=torch.long))


def test_straight_through_and_forward_value_is_the_codeword():
    torch.manual_seed(1)
    vq = FactorizedVectorQuantizer(dim=6, codebook_size=8, codebook_dim=3)
    z = torch.randn(2, 6, 5, requires_grad=True)
    z_q, codes, commit, cb = vq(z)
    # forward value: out_proj of the (unnormalised) codeword
    torch.testing.assert_close(z_q, vq.out_proj(vq.embed(codes)))
    # backward: identity through the lookup, i.e. d z_q / d z = W_out @ W_in (1x1 convs)
    r = torch.randn_like(z_q)
    (g,) = torch.autograd.grad((z_q * r).sum(), z)
    w_in, w_out = vq.in_proj.weight[..., 0], vq.out_proj.weight[..., 0]  # (D_c, D), (D, D_c)
    expected = torch.einsum("cd,ec,bef->bdf", w_in, w_out, r)
    torch.testing.assert_close(g, expected, rtol=1e-4, atol=1e-5)


def test_losses_values_and_where_their_gradients_go():
    torch.manual_seed(2)
    vq = FactorizedVectorQuantizer(dim=6, codebook_size=8, codebook_dim=3)
    z = torch.randn(4, 6, 5)
    _, codes, commit, cb = vq(z)
    z_e, e = vq.in_proj(z), vq.embed(codes)
    expected = (z_e - e).pow(2).mean(dim=(1, 2))
    assert commit.shape == cb.shape == (4,)
    torch.testing.assert_close(commit, expected)
    torch.testing.assert_close(cb, expected)
    vq.zero_grad()
    commit.sum().backward(retain_graph=True)
    assert vq.codebook.weight.grad is None or vq.codebook.weight.grad.abs().sum() == 0
    assert vq.in_proj.parametrizations.weight.original1.grad.abs().sum() > 0
    vq.zero_grad()
    cb.sum().backward()
    assert vq.codebook.weight.grad.abs().sum() > 0
    assert vq.in_proj.parametrizations.weight.original1.grad is None


def test_quantizer_dropout_per_example_masks_later_stages():
    rvq = _rvq(n_codebooks=4, quantizer_dropout=0.5).train()
    z = torch.randn(8, 16, 3)
    torch.manual_seed(3)
    out = rvq(z)
    n = out.per_example
    assert n.shape == (8,) and torch.all(n[4:] == 4) and torch.all((n[:4] >= 1) & (n[:4] <= 4))
    assert out.codes.shape == (8, 4, 3) and out.n_quantizers == 4
    # an example's z_q is the sum of its first K'_b stages only
    with torch.no_grad():
        for b in range(8):
            ref = rvq.decode(out.codes[b : b + 1, : int(n[b])])
            torch.testing.assert_close(out.z_q[b : b + 1], ref, rtol=1e-5, atol=1e-6)
    # losses: summed over stages, each averaged over the batch with the mask
    assert out.commitment_loss.dim() == 0 and out.commitment_loss > 0
    # eval and a fixed n_quantizers use the same K' for every example
    assert torch.all(rvq(z, n_quantizers=2).per_example == 2)
    assert torch.all(rvq.eval()(z).per_example == 4)


def test_registry_rejects_bad_settings():
    assert isinstance(_rvq(), FactorizedResidualVectorQuantizer)
    with pytest.raises(ValueError, match="quantizer_dropout 1.5 must lie in"):
        _rvq(quantizer_dropout=1.5)
    with pytest.raises(ValueError, match="unknown key"):
        QUANTIZERS.build("factorized_rvq", {"decay": 0.9})


@pytest.mark.parametrize(("batch", "prob", "n_dropped"), [(3, 0.5, 1), (5, 0.5, 2), (4, 1.0, 4)])
def test_dropout_draws_b_numbers_and_drops_floor_b_p_examples(batch, prob, n_dropped):
    """As DAC's ResidualVectorQuantize: B draws from the global generator whatever p, the
    first floor(B * p) examples take theirs, every stage runs (masked per example)."""
    rvq = _rvq(n_codebooks=4, quantizer_dropout=prob).train()
    z = torch.randn(batch, 16, 3)
    torch.manual_seed(3)
    draws = torch.randint(1, 5, (batch,))
    after = torch.rand(())
    torch.manual_seed(3)
    out = rvq(z)
    assert float(torch.rand(())) == float(after)  # the stream advanced by B draws
    assert out.per_example.tolist() == [*draws[:n_dropped].tolist(), *[4] * (batch - n_dropped)]
    assert out.codes.shape == (batch, 4, 3) and out.n_quantizers == 4
    (out.z_q.sum() + out.commitment_loss + out.codebook_loss).backward()
    assert all(p.grad is not None for p in rvq.parameters())  # zeros where no example used it


def test_lookup_keeps_float64():
    torch.manual_seed(4)
    vq = FactorizedVectorQuantizer(dim=6, codebook_size=64, codebook_dim=3).double()
    z_e = torch.randn(2, 3, 50, dtype=torch.float64)
    flat = z_e.transpose(1, 2).reshape(-1, 3)
    expected = (F.normalize(flat, dim=1) @ F.normalize(vq.codebook.weight, dim=1).t()).argmax(1)
    assert torch.equal(vq.lookup(z_e).reshape(-1), expected)
