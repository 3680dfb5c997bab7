"""Tests of codectk.quantization.grvq: group-residual VQ layout, dropout, DDP, registry."""

import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from codectk.quantization import QUANTIZERS, GroupResidualVectorQuantizer
from test.quantization.test_rvq import mixture_latents


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP oversubscription on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_grvq(steps=10, **overrides):
    """A GRVQ over D = 8 (2 groups of 4 channels, 3 stages, 16 entries) after training."""
    torch.manual_seed(0)
    conf = dict(dimension=8, n_groups=2, n_codebooks_per_group=3, codebook_size=16)
    conf.update(overrides)
    grvq = GroupResidualVectorQuantizer(**conf)
    z = mixture_latents()  # (8, 8, 32)
    grvq.train()
    for _ in range(steps):
        grvq(z)
    return grvq.eval(), z


def test_codes_are_stage_major_and_round_trip():
    grvq, z = trained_grvq()
    with torch.no_grad():
        codes = grvq.encode(z)
        per_group = [rvq.encode(part) for rvq, part in zip(grvq.groups, z.chunk(2, dim=1))]
        out = grvq(z)
    assert codes.shape == (8, 6, 32) and codes.dtype == torch.long
    for stage in range(3):
        for group in range(2):  # codebook k = stage * G + group
            assert torch.equal(codes[:, stage * 2 + group], per_group[group][:, stage])
    assert torch.equal(out.codes, codes) and out.n_quantizers == 6
    torch.testing.assert_close(grvq.decode(codes), out.z_q, rtol=0, atol=1e-5)
    # the first K' = n * G codebooks are the first n stages of every group
    assert torch.equal(grvq.encode(z, 4), codes[:, :4])
    z2 = torch.cat([rvq.decode(c[:, :2]) for rvq, c in zip(grvq.groups, per_group)], dim=1)
    torch.testing.assert_close(grvq.decode(codes[:, :4]), z2, rtol=0, atol=1e-6)
    assert grvq.valid_n_quantizers == [2, 4, 6]


def test_error_decreases_with_stages_and_training():
    untrained, z = trained_grvq(steps=1, kmeans_init=False, threshold_ema_dead_code=0.0)
    grvq, _ = trained_grvq()
    with torch.no_grad():
        errors = [(grvq.decode(grvq.encode(z, n)) - z).pow(2).mean().item() for n in (2, 4, 6)]
        untrained_error = (untrained(z).z_q - z).pow(2).mean().item()
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[-1] < 0.5 * untrained_error


def test_quantizer_dropout_drops_whole_stages():
    torch.manual_seed(0)
    grvq = GroupResidualVectorQuantizer(8, 2, 3, 16, quantizer_dropout=1.0)
    grvq.train()
    z = mixture_latents(frames=4)
    seen = set()
    for _ in range(30):
        out = grvq(z)
        assert out.codes.shape == (8, out.n_quantizers, 4)
        seen.add(out.n_quantizers)
    assert seen == {2, 4, 6}
    grvq.eval()
    assert grvq(z).n_quantizers == 6


def test_straight_through_gradient_and_commitment():
    grvq, z = trained_grvq(steps=2)
    grvq.train()
    z = z.clone().requires_grad_(True)
    out = grvq(z)
    out.z_q.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))
    assert out.commitment_loss.item() > 0 and out.codebook_loss.item() == 0.0


def test_bad_arguments_raise():
    grvq = GroupResidualVectorQuantizer(8, 2, 3, 16)
    z = mixture_latents(frames=4)
    with pytest.raises(
        ValueError, match=r"n_quantizers 3 not supported; choose one of \[2, 4, 6\]"
    ):
        grvq.encode(z, 3)
    with pytest.raises(ValueError, match=r"n_quantizers 5 not supported"):
        grvq.decode(torch.zeros(2, 5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"z must be \(B, 8, F\)"):
        grvq.encode(torch.zeros(2, 6, 4))
    with pytest.raises(ValueError, match="dimension 9 is not divisible by n_groups 2"):
        GroupResidualVectorQuantizer(9, 2)


def test_registry_builds_grvq_and_rejects_unknown_keys():
    grvq = QUANTIZERS.build("grvq", {"dimension": 8, "n_groups": 4, "codebook_size": 16})
    assert isinstance(grvq, GroupResidualVectorQuantizer)
    assert grvq.n_codebooks == 8 and len(grvq.groups) == 4
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_q'\]"):
        QUANTIZERS.build("grvq", {"n_q": 2})


def _ddp_worker(rank, world_size, rdv, out_dir):
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rdv}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        torch.set_num_threads(1)
        torch.manual_seed(rank)  # different seeds and data per rank
        grvq = GroupResidualVectorQuantizer(8, 2, 2, 16, kmeans_iters=5, quantizer_dropout=1.0)
        grvq.train()
        used = []
        for step in range(6):
            used.append(grvq(mixture_latents(seed=10 * rank + step, frames=12)).n_quantizers)
        torch.save({"state": grvq.state_dict(), "used": used}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_codebooks_stay_identical(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["used"] == r1["used"] and set(r0["used"]) == {2, 4}
    embeds = [k for k in r0["state"] if k.endswith("codebook.embed")]
    assert len(embeds) == 4  # 2 groups x 2 stages
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    assert all(r0["state"][k].abs().sum() > 0 for k in embeds)  # initialised and trained


def test_gradient_codebooks_learn_and_report_both_losses():
    """codebook_update: gradient (AcademiCodec's Quantizer): nn.Embedding codebooks,
    uniform +-1/V init, codebook loss trains them, commitment loss trains the encoder."""
    torch.manual_seed(0)
    grvq = GroupResidualVectorQuantizer(8, 2, 2, 16, codebook_update="gradient").train()
    weights = [p for p in grvq.parameters()]
    assert len(weights) == 4 and all(p.shape == (16, 4) for p in weights)
    assert all(p.abs().max() <= 1 / 16 for p in weights)
    assert not list(grvq.buffers())
    z = mixture_latents(frames=6).requires_grad_(True)
    out = grvq(z)
    assert torch.equal(out.codes, grvq.encode(z)) and out.n_quantizers == 4
    # the losses by hand: per group g and stage l, mean (r - q)^2 (codes stage-major)
    with torch.no_grad():
        per_group = []
        for g, (rvq, zg) in enumerate(zip(grvq.groups, z.chunk(2, 1))):
            q0 = rvq.layers[0].decode(out.codes[:, g])
            q1 = rvq.layers[1].decode(out.codes[:, 2 + g])
            per_group.append(((zg - q0).pow(2).mean() + (zg - q0 - q1).pow(2).mean()) / 2)
        expect = torch.stack(per_group).mean()
    torch.testing.assert_close(out.commitment_loss.detach(), expect)
    torch.testing.assert_close(out.codebook_loss.detach(), expect)
    (grad_cb,) = torch.autograd.grad(out.codebook_loss, weights[0], retain_graph=True)
    (grad_z,) = torch.autograd.grad(out.commitment_loss, z, retain_graph=True)
    assert grad_cb.abs().sum() > 0 and grad_z.abs().sum() > 0
    with pytest.raises(RuntimeError, match="does not require grad|not have been used"):
        torch.autograd.grad(out.commitment_loss, weights[0])
    (grad_st,) = torch.autograd.grad(out.z_q.sum(), z)
    torch.testing.assert_close(grad_st, torch.ones_like(z))
    # training moves the codebooks towards the data
    opt = torch.optim.Adam(grvq.parameters(), lr=0.05)
    errors = []
    for _ in range(30):
        out = grvq(z.detach())
        errors.append(float((out.z_q - z).pow(2).mean()))
        opt.zero_grad()
        out.codebook_loss.backward()
        opt.step()
    assert errors[-1] < 0.5 * errors[0]


def test_gradient_mode_refuses_ema_options():
    with pytest.raises(ValueError, match=r"\['kmeans_iters'\] apply to codebook_update 'ema' only"):
        GroupResidualVectorQuantizer(8, 2, 2, 16, kmeans_iters=3, codebook_update="gradient")
    with pytest.raises(ValueError, match="codebook_update 'learned' not supported"):
        GroupResidualVectorQuantizer(8, 2, codebook_update="learned")
