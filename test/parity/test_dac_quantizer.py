"""DAC parity, rung (c): the factorized RVQ's training forward, quantizer dropout included.

Reference: descript-audio-codec 1.0.0, ``dac/nn/quantize.py`` (``VectorQuantize``
:13-94, ``ResidualVectorQuantize.forward`` :127-198; the dropout draw :166-171: in
training, B numbers from ``torch.randint`` whatever p, the first ``int(B * p)`` examples
take theirs, every stage runs on the whole batch with a per-example mask). codectk's side is
:class:`~codectk.quantization.factorized_vq.FactorizedResidualVectorQuantizer` inside the
``dac`` codec, weights copied with the converter (``quantizer.quantizers.<i>`` ->
``quantizer.layers.<i>``, weight-norm names).

Compared, in float64 (pure torch on both sides), seeded with the same seed right before
each side: the codes of every stage, z_q, the commitment and codebook losses, the number
of codebooks each example used (read off the authors' z_q: the shortest prefix of its
codes that decodes to it), the state of the global random generator afterwards, and the
gradients of 0.25 commitment + codebook + <z_q, r> w.r.t. z and every quantizer weight
(``None`` on one side and zeros on the other is a difference: AdamW decays a zero
gradient's weights and moments and skips a missing one). Tolerance 1e-12 of each
tensor's largest magnitude; codes exactly.
"""

from __future__ import annotations

import pytest
import torch

from codectk.models.dac import DAC, dac_tiny_conf
from test.parity.dac_reference import assert_rel_close, copy_generator, generator_pairs
from test.parity.refs import require_package
from test.single_thread import one_torch_thread  # noqa: F401

dac = require_package("dac")  # skips the module outside tools/venv-compare

D, K, V, D_C = 16, 4, 32, 4


def _models(quantizer_dropout: float):
    torch.manual_seed(0)
    kwargs = dict(
        encoder_dim=2,
        encoder_rates=[2, 2, 2],
        latent_dim=D,
        decoder_dim=8,
        decoder_rates=[2, 2, 2],
        n_codebooks=K,
        codebook_size=V,
        codebook_dim=D_C,
        quantizer_dropout=quantizer_dropout,
        sample_rate=16000,
    )
    ref = dac.model.DAC(**kwargs)
    ours = DAC(
        **dac_tiny_conf(
            sample_rate=16000,
            encoder=dict(dim=2, rates=[2, 2, 2], latent_dim=D),
            decoder=dict(dim=8, rates=[2, 2, 2]),
            quantizer=dict(n_codebooks=K, codebook_size=V, codebook_dim=D_C),
            quantizer_dropout=quantizer_dropout,
        )
    )
    copy_generator(ref, ours)
    return ref.double(), ours.double()


def _latents(batch: int, frames: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(batch)
    return torch.randn(batch, D, frames, generator=g, dtype=torch.float64)


def _counts_used(rvq, z_q: torch.Tensor, codes: torch.Tensor) -> list[int]:
    """Per example, the shortest prefix of its codes whose decoding is its z_q."""
    counts = []
    with torch.no_grad():
        for b in range(z_q.shape[0]):
            for n in range(1, codes.shape[1] + 1):
                z, _, _ = rvq.from_codes(codes[b : b + 1, :n])
                if torch.allclose(z, z_q[b : b + 1], rtol=0, atol=1e-12):
                    counts.append(n)
                    break
            else:
                raise AssertionError(f"example {b}: no prefix of its codes gives its z_q")
    return counts


@pytest.mark.parametrize("quantizer_dropout", [0.5, 1.0, 0.0])
@pytest.mark.parametrize("batch", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 3, 4])
def test_training_forward_dropout_losses_and_gradients(quantizer_dropout, batch, seed):
    ref, ours = _models(quantizer_dropout)
    rvq_ref, rvq = ref.quantizer.train(), ours.quantizer.train()
    z = _latents(batch)
    z_ref, z_ours = z.clone().requires_grad_(), z.clone().requires_grad_()
    r = torch.randn(z.shape, generator=torch.Generator().manual_seed(9), dtype=z.dtype)

    torch.manual_seed(seed)
    z_q_ref, codes_ref, _, commit_ref, codebook_ref = rvq_ref(z_ref)
    after_ref = torch.randint(0, 2**62, (4,))
    torch.manual_seed(seed)
    out = rvq(z_ours)
    after = torch.randint(0, 2**62, (4,))

    assert torch.equal(after, after_ref), "random stream differs after the forward"
    assert torch.equal(out.codes, codes_ref)
    assert out.per_example.tolist() == _counts_used(rvq_ref, z_q_ref, codes_ref)
    n_dropped = int(batch * quantizer_dropout)  # quantize.py:169
    assert torch.all(out.per_example[n_dropped:] == K)
    assert_rel_close(out.z_q.detach(), z_q_ref.detach(), 1e-12, "z_q")
    assert_rel_close(out.commitment_loss.detach(), commit_ref.detach(), 1e-12, "commitment")
    assert_rel_close(out.codebook_loss.detach(), codebook_ref.detach(), 1e-12, "codebook")

    (0.25 * commit_ref + codebook_ref + (z_q_ref * r).sum()).backward()
    (0.25 * out.commitment_loss + out.codebook_loss + (out.z_q * r).sum()).backward()
    assert_rel_close(z_ours.grad, z_ref.grad, 1e-12, "d / d z")
    for ref_name, p_ref, name, p in generator_pairs(ref, ours):
        if not name.startswith("quantizer."):
            continue
        assert (p.grad is None) == (p_ref.grad is None), f"{name}: grad None on one side"
        if p_ref.grad is not None:
            assert_rel_close(p.grad, p_ref.grad, 1e-12, f"d / d {name} ({ref_name})")


@pytest.mark.parametrize("n_quantizers", [1, 2, K])
def test_eval_forward_with_fixed_codebook_count(n_quantizers):
    ref, ours = _models(0.5)
    z = _latents(3)
    with torch.no_grad():
        z_q_ref, codes_ref, _, commit_ref, codebook_ref = ref.quantizer.eval()(z, n_quantizers)
        out = ours.quantizer.eval()(z, n_quantizers)
        codes = ours.quantizer.encode(z, n_quantizers)
    assert torch.equal(out.codes, codes_ref) and torch.equal(codes, codes_ref)
    assert_rel_close(out.z_q, z_q_ref, 1e-12, "z_q")
    assert_rel_close(out.commitment_loss, commit_ref, 1e-12, "commitment")
    assert_rel_close(out.codebook_loss, codebook_ref, 1e-12, "codebook")
