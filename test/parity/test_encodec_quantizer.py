"""EnCodec's residual VQ training forward against audiocraft 1.3.0's.

Reference: ``audiocraft/quantization/vq.py:76-85`` (``ResidualVectorQuantizer``) over
``core_vq.py`` (``EuclideanCodebook`` 87-219, ``VectorQuantization`` 313-349,
``ResidualVectorQuantization`` 363-385), with the settings of
``config/model/encodec/default.yaml:43-52`` (decay 0.99, k-means init, dead-code threshold
2; k-means iterations cut to 10 and codebooks to 64 entries for speed). codectk's side is
``ResidualVectorQuantizer(ema_init="unweighted", dead_code="before_ema",
detach_residual=True)`` as the EnCodec configs set it. Both run in float64, seeded with the
same seed right before each forward, for several training steps with K' varying.

Compared each step: codes (``torch.equal``); the random-number stream after the forward
(``torch.equal`` on the CPU generator state: the same k-means and dead-code draws);
quantized output, commitment loss, the gradients w.r.t. z of both, and every EMA buffer
(``embed``, ``embed_avg``, ``cluster_size``) within rtol 1e-12 / atol 1e-12 (float64;
not bit for bit because distances, k-means and the EMA sums are written differently:
explicit differences and one-hot matmuls there, expanded distances and index_add here).
The commitment loss and its gradient within rtol 1e-6: the authors add each stage's loss
to a float32 ``torch.tensor([0.0])`` (``core_vq.py:323-328``), which rounds it to float32.
"""

from __future__ import annotations

import pytest
import torch

from codectk.models.encodec import EnCodec, encodec_tiny_conf
from codectk.quantization.rvq import ResidualVectorQuantizer
from test.parity import audiocraft_ref
from test.single_thread import one_torch_thread  # noqa: F401

D, V, K, ITERS = 8, 64, 4, 10
TOL = dict(rtol=1e-12, atol=1e-12)
TOL_COMMIT = dict(rtol=1e-6, atol=1e-12)
# (n_q, batch, frames): a full and partial stages; 2 x 24 = 48 frames < V exercises the
# randint branch of the authors' sample_vectors, 3 x 40 = 120 the randperm branch
STEPS = [(K, 3, 40), (2, 3, 40), (K, 2, 24), (1, 3, 40), (K, 3, 40), (3, 2, 24)]


def _pair(kmeans_init: bool):
    vq = audiocraft_ref.quantizer()
    torch.manual_seed(0)
    theirs = vq.ResidualVectorQuantizer(
        dimension=D,
        n_q=K,
        q_dropout=False,
        bins=V,
        decay=0.99,
        kmeans_init=kmeans_init,
        kmeans_iters=ITERS,
        threshold_ema_dead_code=2,
    ).double()
    torch.manual_seed(0)
    ours = ResidualVectorQuantizer(
        D,
        K,
        V,
        decay=0.99,
        kmeans_init=kmeans_init,
        kmeans_iters=ITERS,
        threshold_ema_dead_code=2.0,
        ema_init="unweighted",
        dead_code="before_ema",
        detach_residual=True,
    ).double()
    return theirs.train(), ours.train()


def _buffers(theirs, ours, check_flag: bool = True):
    for i in range(K):
        a, b = theirs.vq.layers[i]._codebook, ours.layers[i].codebook
        # without k-means the authors' flag starts True, codectk's at the first training
        # batch (its initialisation then only broadcasts the random codebook over ranks)
        if check_flag:
            assert bool(a.inited) == bool(b.initialized), f"layer {i}: initialised"
        for name in ("embed", "embed_avg", "cluster_size"):
            torch.testing.assert_close(
                getattr(b, name), getattr(a, name), **TOL, msg=f"layer {i} {name}"
            )


def _latent(step: int, batch: int, frames: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + step)
    centres = 2.0 * torch.randn(12, D, generator=gen, dtype=torch.float64)
    pick = torch.randint(0, 12, (batch * frames,), generator=gen)
    z = centres[pick] + 0.3 * torch.randn(batch * frames, D, generator=gen, dtype=torch.float64)
    return z.view(batch, frames, D).transpose(1, 2).contiguous()  # (B, D, F)


@pytest.mark.parametrize("kmeans_init", [True, False])
def test_rvq_training_forward_equals_audiocraft(kmeans_init):
    theirs, ours = _pair(kmeans_init)
    _buffers(theirs, ours, check_flag=kmeans_init)
    for step, (n_q, batch, frames) in enumerate(STEPS):
        z0 = _latent(step, batch, frames)
        probe = torch.randn(z0.shape, generator=torch.Generator().manual_seed(step), dtype=z0.dtype)
        theirs.set_num_codebooks(n_q)
        z_theirs = z0.clone().requires_grad_(True)
        torch.manual_seed(step)
        res = theirs(z_theirs, frame_rate=50)
        rng_theirs = torch.get_rng_state()
        z_ours = z0.clone().requires_grad_(True)
        torch.manual_seed(step)
        out = ours(z_ours, n_quantizers=n_q)
        assert torch.equal(torch.get_rng_state(), rng_theirs), f"step {step}: random draws"
        assert torch.equal(out.codes, res.codes), f"step {step}: codes"
        torch.testing.assert_close(out.z_q, res.x, **TOL)
        torch.testing.assert_close(out.commitment_loss.float(), res.penalty, **TOL_COMMIT)
        # straight-through and commitment gradients, separately
        pairs = {
            "z_q": ((res.x * probe).sum(), (out.z_q * probe).sum(), TOL),
            "commit": (res.penalty, out.commitment_loss, TOL_COMMIT),
        }
        for name, (loss_theirs, loss_ours, tol) in pairs.items():
            g_theirs = torch.autograd.grad(loss_theirs, z_theirs, retain_graph=True)[0]
            g_ours = torch.autograd.grad(loss_ours, z_ours, retain_graph=True)[0]
            torch.testing.assert_close(g_ours, g_theirs, **tol, msg=f"step {step}: d{name}/dz")
        _buffers(theirs, ours)  # step 0 uses all K stages: every flag is set


def test_every_stage_commitment_reaches_the_encoder():
    """With the residual detached, stage 2's commitment loss has a gradient w.r.t. z."""
    theirs, ours = _pair(kmeans_init=True)
    z = _latent(0, 3, 40)
    ours(z, n_quantizers=K)  # k-means initialisation
    z = z.clone().requires_grad_(True)
    stage1 = ours.layers[0](z)[0].detach()
    loss2 = ours.layers[1](z - stage1)[2]
    assert torch.autograd.grad(loss2, z)[0].abs().sum() > 0
    # codectk's default (residual from the straight-through output) stops it
    plain = ResidualVectorQuantizer(D, 2, V, kmeans_init=False, threshold_ema_dead_code=0.0)
    z = z.detach().clone().requires_grad_(True)
    q1 = plain.layers[0](z)[0]
    loss2 = plain.layers[1](z - q1)[2]
    assert torch.autograd.grad(loss2, z)[0].abs().sum() == 0


def test_uniform_n_quantizers_draw_equals_audiocraft_q_dropout():
    vq = audiocraft_ref.quantizer()
    theirs = vq.ResidualVectorQuantizer(dimension=D, n_q=K, q_dropout=True, bins=V).train()
    codec = EnCodec(
        **encodec_tiny_conf(
            quantizer={"n_codebooks": K}, n_quantizers_sampling="uniform", quantizer_dropout=1.0
        )
    ).train()
    seen = set()
    z = torch.randn(2, D, 5)
    for seed in range(12):
        torch.manual_seed(seed)
        n_theirs = theirs(z, frame_rate=50).codes.shape[1]
        torch.manual_seed(seed)
        n_ours = codec.training_n_quantizers(torch.device("cpu"))
        assert n_ours == n_theirs, f"seed {seed}"
        seen.add(n_ours)
    assert seen == set(range(1, K + 1))
