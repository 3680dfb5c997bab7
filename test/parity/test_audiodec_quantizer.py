"""AudioDec's residual VQ training forward against the authors' code (opt-in).

AudioDec (CC BY-NC 4.0) is not on PyPI: set ``CODECTK_REF_AUDIODEC`` to a checkout of
https://github.com/facebookresearch/AudioDec (docs/parity.md records the commit checked).

Reference: ``layers/vq_module.py`` (``VectorQuantize`` 19-88: EMA decay 0.8, codebook
``randn(dim, V)``, ``cluster_size`` zeros and ``embed_avg`` = the codebook, no k-means,
no dead codes, commitment weight 1; ``ResidualVQ`` 107-134: the residual from the
straight-through output), used through ``models/autoencoder/modules/quantizer.py:32-35``
(transposes (B, D, F) to (B, F, D)); the trainer sums the stages' losses
(``trainer/trainerGAN.py:392-401``). codectk's side: ``ResidualVectorQuantizer`` with
``ema_init="unweighted", random_init="normal"``, seeded the same before construction.

Compared in float64 over 5 training steps: the codebooks after construction
(``torch.equal``); output, summed commitment loss and their gradients w.r.t. z, and the
EMA buffers (``embed``, ``embed_avg``, ``cluster_size``) within rtol 1e-12 / atol 1e-12
(the authors sum clusters with a one-hot matmul, codectk with index_add); then the
inference codes (``ResidualVQ.forward_index``, 136-149) equal codectk's ``encode``.
"""

from __future__ import annotations

from pathlib import Path

import torch

import codectk
from codectk.quantization.rvq import ResidualVectorQuantizer
from test.parity import refs
from test.single_thread import one_torch_thread  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
D, K, V = 8, 3, 32
TOL = dict(rtol=1e-12, atol=1e-12)


def _vq_module():
    root = refs.checkout("CODECTK_REF_AUDIODEC")
    return refs.import_from(root, "layers.vq_module", alias="audiodec_layers")


def _pair(dim: int = D, n_q: int = K, size: int = V):
    vq = _vq_module()
    torch.manual_seed(0)
    theirs = vq.ResidualVQ(dim=dim, num_quantizers=n_q, codebook_size=size).double()
    torch.manual_seed(0)
    ours = ResidualVectorQuantizer(
        dim,
        n_q,
        size,
        decay=0.8,
        kmeans_init=False,
        threshold_ema_dead_code=0.0,
        ema_init="unweighted",
        random_init="normal",
    ).double()
    return theirs.train(), ours.train()


def _buffers(theirs, ours, tol) -> None:
    for i, (a, b) in enumerate(zip(theirs.layers, ours.layers)):
        b = b.codebook
        pairs = (("embed", a.embed.t()), ("embed_avg", a.embed_avg.t()))
        for name, ref in (*pairs, ("cluster_size", a.cluster_size)):
            torch.testing.assert_close(getattr(b, name), ref, **tol, msg=f"layer {i} {name}")


def _latent(step: int, batch: int = 3, frames: int = 20) -> torch.Tensor:
    gen = torch.Generator().manual_seed(500 + step)
    return torch.randn(batch, D, frames, generator=gen, dtype=torch.float64)  # (B, D, F)


def test_rvq_training_forward_equals_audiodec():
    theirs, ours = _pair()
    _buffers(theirs, ours, dict(rtol=0.0, atol=0.0))  # the same randn(D, V) draws
    for step in range(5):
        z0 = _latent(step)
        probe = torch.randn(z0.shape, generator=torch.Generator().manual_seed(step))
        z_theirs = z0.clone().requires_grad_(True)
        zq, vqloss, _ = theirs(z_theirs.transpose(2, 1))  # quantizer.py:33
        zq = zq.transpose(2, 1)
        loss_theirs = vqloss.sum()  # trainerGAN.py:397
        z_ours = z0.clone().requires_grad_(True)
        out = ours(z_ours)
        loss_ours = out.commitment_loss * K  # codectk averages the stages
        torch.testing.assert_close(out.z_q, zq, **TOL)
        torch.testing.assert_close(loss_ours, loss_theirs, **TOL)
        for name, a, b in (
            ("z_q", (zq * probe).sum(), (out.z_q * probe).sum()),
            ("commit", loss_theirs, loss_ours),
        ):
            g_theirs = torch.autograd.grad(a, z_theirs, retain_graph=True)[0]
            g_ours = torch.autograd.grad(b, z_ours, retain_graph=True)[0]
            torch.testing.assert_close(g_ours, g_theirs, **TOL, msg=f"step {step}: d{name}/dz")
        _buffers(theirs, ours, TOL)
    theirs.eval()
    ours.eval()
    z = _latent(9)
    with torch.no_grad():
        _, codes = theirs.forward_index(z.transpose(2, 1))  # (K, B, F)
        assert torch.equal(ours.encode(z), codes.permute(1, 0, 2))


def test_symad_codec_quantizer_has_audiodecs_codebook_settings():
    """The quantizer codectk's symAD config builds starts its codebooks as AudioDec's."""
    vq = _vq_module()
    conf = REPO / "egs" / "mini_librispeech" / "codec1" / "conf" / "symAD_16k_tiny.yaml"
    quantizer = codectk.build_codec(conf).quantizer
    theirs = vq.VectorQuantize(dim=quantizer.dimension, codebook_size=quantizer.codebook_size)
    for layer in quantizer.layers:
        book = layer.codebook
        assert book.decay == theirs.decay and book.epsilon == theirs.eps
        assert not book.kmeans_init and book.threshold_ema_dead_code == 0
        assert torch.equal(book.cluster_size, theirs.cluster_size)  # zeros
        assert book.random_init == "normal"  # randn(D, V), not Kaiming-uniform rows
