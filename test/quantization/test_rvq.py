"""Tests of codectk.quantization.rvq: residual VQ, quantizer dropout, registry."""

import pytest
import torch

from codectk.quantization import QUANTIZERS, ResidualVectorQuantizer


def mixture_latents(seed=0, batch=8, dim=8, frames=32, n_centres=64):
    """Fixed (B, D, F) latents from a Gaussian mixture."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_centres, dim, generator=g) * 2.0
    pick = torch.randint(0, n_centres, (batch * frames,), generator=g)
    x = centres[pick] + 0.3 * torch.randn(batch * frames, dim, generator=g)
    return x.view(batch, frames, dim).transpose(1, 2).contiguous()  # (B*F, D) -> (B, D, F)


def trained_rvq(steps=15, **overrides):
    torch.manual_seed(0)
    conf = dict(dimension=8, n_codebooks=4, codebook_size=16, kmeans_iters=10)
    conf.update(overrides)
    rvq = ResidualVectorQuantizer(**conf)
    z = mixture_latents()
    rvq.train()
    for _ in range(steps):
        rvq(z)
    return rvq.eval(), z


def test_error_decreases_as_codebooks_are_added_and_with_training():
    untrained, z = trained_rvq(steps=1, kmeans_init=False, threshold_ema_dead_code=0.0)
    rvq, _ = trained_rvq()
    with torch.no_grad():
        errors = [(rvq.decode(rvq.encode(z, n)) - z).pow(2).mean().item() for n in range(1, 5)]
        untrained_error = (untrained(z).z_q - z).pow(2).mean().item()
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]
    assert errors[-1] < 0.5 * untrained_error


def test_encode_decode_equals_forward_in_eval():
    rvq, z = trained_rvq(steps=3)
    state = {k: v.clone() for k, v in rvq.state_dict().items()}
    with torch.no_grad():
        out = rvq(z)
        codes = rvq.encode(z)
    assert codes.shape == (8, 4, 32) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 16
    assert torch.equal(codes, out.codes)
    torch.testing.assert_close(rvq.decode(codes), out.z_q, rtol=0, atol=1e-5)
    assert out.n_quantizers == 4 and out.codebook_loss.item() == 0.0
    for k, v in rvq.state_dict().items():  # eval forward left the codebooks alone
        assert torch.equal(v, state[k]), k


def test_quantizer_dropout_samples_k_prime():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(
        dimension=8, n_codebooks=4, codebook_size=16, quantizer_dropout=1.0
    )
    z = mixture_latents(frames=4)
    rvq.train()
    seen = set()
    for _ in range(40):
        out = rvq(z)
        assert out.codes.shape == (8, out.n_quantizers, 4)
        seen.add(out.n_quantizers)
    assert seen == {1, 2, 3, 4}
    assert rvq(z, n_quantizers=2).n_quantizers == 2
    rvq.eval()
    assert {rvq(z).n_quantizers for _ in range(5)} == {4}


def test_no_dropout_uses_all_codebooks_in_training():
    rvq = ResidualVectorQuantizer(dimension=8, n_codebooks=3, codebook_size=16)
    rvq.train()
    assert {rvq(mixture_latents(frames=4)).n_quantizers for _ in range(5)} == {3}


def test_straight_through_gradient_reaches_the_input():
    rvq, z = trained_rvq(steps=2)
    rvq.train()
    z = z.clone().requires_grad_(True)
    out = rvq(z, n_quantizers=4)
    out.z_q.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))
    z.grad = None
    out = rvq(z, n_quantizers=4)
    out.commitment_loss.backward()
    assert z.grad.abs().sum() > 0


def test_bad_n_quantizers_and_codes_raise():
    rvq = ResidualVectorQuantizer(dimension=8, n_codebooks=3, codebook_size=16)
    with pytest.raises(ValueError, match="n_quantizers 4 not supported; choose 1 to 3"):
        rvq.encode(mixture_latents(frames=4), 4)
    with pytest.raises(ValueError, match=r"codes must be \(B, K', F\)"):
        rvq.decode(torch.zeros(2, 5, 4, dtype=torch.long))


def test_registry_builds_rvq_and_rejects_unknown_keys():
    rvq = QUANTIZERS.build("rvq", {"dimension": 8, "n_codebooks": 2, "codebook_size": 16})
    assert isinstance(rvq, ResidualVectorQuantizer) and len(rvq.layers) == 2
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bins'\]"):
        QUANTIZERS.build("rvq", {"bins": 16})


def test_detached_residual_sends_every_stage_commitment_to_the_input():
    z = mixture_latents(frames=8)
    for detach in (False, True):
        torch.manual_seed(0)
        rvq = ResidualVectorQuantizer(8, 3, 16, kmeans_iters=5, detach_residual=detach).train()
        zg = z.clone().requires_grad_(True)
        out = rvq(zg)  # k-means init and one EMA step
        # straight-through either way: dz_q/dz is the identity
        torch.testing.assert_close(torch.autograd.grad(out.z_q.sum(), zg)[0], torch.ones_like(z))
        rvq.eval()  # fixed codebooks: the commitment loss by hand
        out = rvq(zg)
        got = torch.autograd.grad(out.commitment_loss, zg)[0]
        qs = [rvq.layers[i].codebook.decode(out.codes[:, i]).transpose(1, 2) for i in range(3)]
        residuals = [zg, zg - qs[0], zg - qs[0] - qs[1]]  # q_i are constants
        stages = residuals if detach else residuals[:1]  # else r_2, r_3 have no gradient
        expected = sum(((r - q) ** 2).mean() for r, q in zip(stages, qs)) / 3
        torch.testing.assert_close(got, torch.autograd.grad(expected, zg)[0])
