"""Tests of codectk.quantization.base and .dropout: the quantizer contract (ladder, dropout
policy, masked residual loop, float32 island) and the sync-free training forward."""

import contextlib
import copy
import math

import pytest
import torch
from torch import nn

from codectk.quantization import (
    QUANTIZERS,
    CrossScaleRVQ,
    FactorizedResidualVectorQuantizer,
    FiniteScalarQuantizer,
    GroupResidualVectorQuantizer,
    QuantizerDropout,
    ResidualVectorQuantizer,
    is_float32_island,
    seed_dropout_,
    set_sync_free,
)

HOST_READS = ("item", "__float__", "__bool__", "__int__", "__index__", "cpu", "tolist", "numpy")


@contextlib.contextmanager
def no_host_reads(monkeypatch):
    """Fail on any read of a tensor's value by the host (what waits for a device)."""
    calls = []

    def spy(name):
        def refuse(self, *args, **kwargs):
            calls.append(name)
            raise AssertionError(f"host read: Tensor.{name}")

        return refuse

    with monkeypatch.context() as m:
        for name in HOST_READS:
            m.setattr(torch.Tensor, name, spy(name))
        yield calls
    assert not calls, calls


def latents(batch=4, dim=8, frames=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, frames, generator=g)


# ------------------------------------------------------------------ ladder
@pytest.mark.parametrize(
    "quantizer, ladder",
    [
        (ResidualVectorQuantizer(8, 3, 16), [1, 2, 3]),
        (FactorizedResidualVectorQuantizer(8, 3, 16, 4), [1, 2, 3]),
        (FiniteScalarQuantizer(8, [3, 3], 2), [1, 2]),
        (GroupResidualVectorQuantizer(8, 2, 3, 16), [2, 4, 6]),
        (CrossScaleRVQ([4, 4], [2, 4], 1, 3, 16, [2, 2]), [3, 6]),
    ],
)
def test_ladder_of_every_quantizer(quantizer, ladder):
    assert quantizer.valid_n_quantizers == ladder
    assert quantizer.check_n_quantizers(None) == ladder[-1]
    assert [quantizer.check_n_quantizers(n) for n in ladder] == ladder
    for bad in (0, ladder[-1] + 1, ladder[0] + 1 if ladder[0] > 1 else -1, True):
        with pytest.raises(ValueError, match=f"n_quantizers {bad} not supported; choose"):
            quantizer.check_n_quantizers(bad)


def test_ladder_messages_name_the_step():
    grvq = GroupResidualVectorQuantizer(8, 2, 3, 16)
    with pytest.raises(ValueError, match=r"one of \[2, 4, 6\] \(whole stages of 2 codebooks\)"):
        grvq.check_n_quantizers(3)
    with pytest.raises(ValueError, match="must be a positive multiple of codebooks_per_step"):
        QUANTIZERS.get("csrvq")([4], [2], 1, 0, 16, [2])


def test_dropout_choices_must_be_on_the_ladder():
    grvq = GroupResidualVectorQuantizer(8, 2, 3, 16)
    with pytest.raises(ValueError, match=r"\[3\] are not among \[2, 4, 6\]"):
        grvq.set_dropout_(QuantizerDropout(1.0, choices=[2, 3]))
    with pytest.raises(ValueError, match="give quantizer_dropout or a dropout policy"):
        ResidualVectorQuantizer(8, 3, 16, quantizer_dropout=0.5, dropout=QuantizerDropout(0.5))
    with pytest.raises(ValueError, match="probability 1.5 must lie in"):
        QuantizerDropout(1.5)


# ------------------------------------------------------------------ dropout draws
def test_exact_per_batch_draws_are_the_families_draws():
    """The global-generator draws the families made before the policy existed."""
    K = 5
    for seed in range(30):
        for coin, p in (("always", 0.6), ("always", 1.0), ("uncertain", 0.6), ("uncertain", 1.0)):
            torch.manual_seed(seed)
            got = QuantizerDropout(p, coin=coin).sample(list(range(1, K + 1)), "cpu", False)
            torch.manual_seed(seed)
            toss = not (coin == "uncertain" and p >= 1)
            take = bool(torch.rand(()) < p) if toss else True
            want = int(torch.randint(1, K + 1, ())) if take else K
            assert got == want
        torch.manual_seed(seed)  # FunCodec's choices: no coin, choices[randint(len)]
        got = QuantizerDropout(1.0, [1, 2, 4], coin="uncertain").sample([1, 2, 3, 4], "cpu", False)
        torch.manual_seed(seed)
        assert got == [1, 2, 4][int(torch.randint(3, ()))]


def test_exact_per_example_draw_is_dacs():
    """B numbers from the global CPU generator whatever p; the first floor(B p) used."""
    for batch, p in ((3, 0.5), (8, 0.5), (4, 0.0), (5, 1.0)):
        torch.manual_seed(batch)
        got = QuantizerDropout(p, per_example=True).sample_per_example(
            batch, [1, 2, 3, 4], torch.device("cpu"), False
        )
        after = torch.rand(())
        torch.manual_seed(batch)
        draws = torch.randint(1, 5, (batch,))
        n = int(batch * p)
        assert got.tolist() == [*draws[:n].tolist(), *[4] * (batch - n)]
        assert torch.equal(after, torch.rand(()))  # the stream advanced by B numbers


def test_sync_free_draws_have_the_exact_distributions():
    ladder = [1, 2, 3, 4]
    policy = QuantizerDropout(0.5)
    draws = torch.tensor([policy.sample(ladder, "cpu", True) for _ in range(6000)])
    assert abs((draws == 4).float().mean() - (0.5 + 0.5 / 4)) < 0.02  # coin lost or K drawn
    for n in (1, 2, 3):
        assert abs((draws == n).float().mean() - 0.125) < 0.015
    targets = QuantizerDropout(1.0, [2, 4], coin="uncertain")
    assert {targets.sample(ladder, "cpu", True) for _ in range(50)} == {2, 4}
    per = QuantizerDropout(0.5, per_example=True)
    counts = torch.stack(
        [per.sample_per_example(16, ladder, torch.device("cpu"), True) for _ in range(500)]
    )  # (500, 16)
    assert torch.all(counts[:, 8:] == 4)
    hist = torch.bincount(counts[:, :8].flatten(), minlength=5)[1:].float() / counts[:, :8].numel()
    torch.testing.assert_close(hist, torch.full((4,), 0.25), rtol=0, atol=0.02)


def test_seeded_host_draws_agree_across_ranks_and_resumes():
    """Two replicas (ranks) seeded with (seed, step) draw the same K' without talking;
    another step draws another sequence."""
    a = ResidualVectorQuantizer(8, 6, 16, quantizer_dropout=0.8)
    b = copy.deepcopy(a)
    seqs = []
    for rvq in (a, b, a):
        seed_dropout_(rvq, seed=3, step=17)
        seqs.append([rvq.dropout.sample(rvq.valid_n_quantizers, "cpu", True) for _ in range(20)])
    assert seqs[0] == seqs[1] == seqs[2]
    seed_dropout_(a, seed=3, step=18)
    assert [a.dropout.sample(a.valid_n_quantizers, "cpu", True) for _ in range(20)] != seqs[0]


# ------------------------------------------------------------------ masked residual loop
def test_ema_rvq_runs_dacs_masked_loop_with_per_example_dropout():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(
        8, 4, 16, dropout=QuantizerDropout(1.0, per_example=True), threshold_ema_dead_code=0.0
    ).train()
    z = latents(batch=6)
    rvq(z)  # k-means start
    before = copy.deepcopy(rvq)  # the codebooks this step's codes come from
    torch.manual_seed(1)
    out = rvq(z)
    counts = out.per_example
    assert out.n_quantizers == 4 and out.codes.shape == (6, 4, 40) and counts.shape == (6,)
    assert len(set(counts.tolist())) > 1
    with torch.no_grad():  # example b is the sum of its first K'_b stages' codewords
        for b in range(6):
            want = before.decode(out.codes[b : b + 1, : int(counts[b])])
            torch.testing.assert_close(out.z_q[b : b + 1], want, rtol=0, atol=1e-5)


def test_grouped_rvq_per_example_dropout_masks_whole_stages():
    torch.manual_seed(0)
    grvq = GroupResidualVectorQuantizer(
        8, 2, 3, 16, codebook_update="gradient", dropout=QuantizerDropout(1.0, per_example=True)
    ).train()
    z = latents(batch=5)
    out = grvq(z)
    assert set(out.per_example.tolist()) <= {2, 4, 6} and out.codes.shape == (5, 6, 40)
    with torch.no_grad():
        for b in range(5):
            want = grvq.decode(out.codes[b : b + 1, : int(out.per_example[b])])
            torch.testing.assert_close(out.z_q[b : b + 1], want, rtol=0, atol=1e-5)
    (out.z_q.sum() + out.commitment_loss + out.codebook_loss).backward()
    assert all(p.grad is not None for p in grvq.parameters())


# ------------------------------------------------------------------ float32 island
def test_quantizers_stay_float32_under_bf16_autocast():
    """Under autocast a bf16 latent is quantised as its float32 value would be."""
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 3, 16, codebook_dim=4, threshold_ema_dead_code=0.0).train()
    rvq(latents())  # trained a step: k-means start and EMA in float32
    x = latents(seed=1).bfloat16()
    for quantizer in (rvq.train(), rvq.eval(), FiniteScalarQuantizer(8, [5, 5], 2)):
        ref = copy.deepcopy(quantizer)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = quantizer(x)
        want = ref(x.float())
        assert out.z_q.dtype == torch.float32 and out.commitment_loss.dtype == torch.float32
        assert torch.equal(out.codes, want.codes) and torch.equal(out.z_q, want.z_q)
        assert all(
            t.dtype == torch.float32
            for t in quantizer.state_dict().values()
            if t.is_floating_point()
        )
    assert all(is_float32_island(m) for m in (rvq, rvq.layers[0], rvq.layers[0].codebook))
    assert not is_float32_island(CrossScaleRVQ([4], [2], 1, 3, 16, [2]))  # runs the decoder


def test_float64_stays_float64():
    grvq = GroupResidualVectorQuantizer(8, 2, 2, 16, codebook_update="gradient").double()
    out = grvq(latents().double())
    assert out.z_q.dtype == torch.float64


# ------------------------------------------------------------------ sync-free
def _rvq(**kw):
    return ResidualVectorQuantizer(8, 3, 16, kmeans_iters=3, threshold_ema_dead_code=4.0, **kw)


def _esc_streams():
    """A two-stream cross-scale RVQ with a toy decoder block (H 2 -> 4, C 4 -> 4)."""

    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):  # (B, H, W, C) -> (B, 2H, W, C)
            return self.lin(x).repeat_interleave(2, dim=1)

    q = CrossScaleRVQ([4, 4], [2, 2], 2, 3, 16, [2, 2], dropout_rate=0.75)
    return q, nn.ModuleList([Up()])


TRAINING_FORWARDS = {
    "rvq_ema_reset_dropout": lambda: (_rvq(quantizer_dropout=1.0), None),
    "rvq_ema_before_ema": lambda: (_rvq(dead_code="before_ema", ema_init="unweighted"), None),
    "factorized_rvq_dropout": lambda: (FactorizedResidualVectorQuantizer(8, 3, 16, 4, 0.5), None),
    "grvq_ema_dropout": lambda: (
        GroupResidualVectorQuantizer(8, 2, 2, 16, kmeans_iters=3, quantizer_dropout=1.0),
        None,
    ),
    "grvq_gradient": lambda: (
        GroupResidualVectorQuantizer(8, 2, 2, 16, codebook_update="gradient"),
        None,
    ),
    "csrvq": _esc_streams,
    "fsq": lambda: (FiniteScalarQuantizer(8, [5, 3], 2), None),
}


@pytest.mark.parametrize("name", sorted(TRAINING_FORWARDS))
def test_sync_free_training_forward_reads_nothing_back(name, monkeypatch):
    torch.manual_seed(0)
    quantizer, blocks = TRAINING_FORWARDS[name]()
    set_sync_free(quantizer.train(), True)

    def step(seed):
        if blocks is None:
            z = latents(seed=seed).requires_grad_()
            out = quantizer(z)
            return out.z_q.sum() + out.commitment_loss + out.codebook_loss
        enc = [torch.randn(2, 2, 4, 4), torch.randn(2, 4, 4, 4)]  # (B, H, W, C) per scale
        n, _ = quantizer.n_for_forward(enc[0], None)
        dec, codes, commit, codebook = quantizer(enc, blocks, n // quantizer.groups)
        return dec.sum() + commit.sum() + codebook.sum()

    step(0).backward()  # the first step may read (k-means start)
    with no_host_reads(monkeypatch):
        for seed in range(1, 4):
            step(seed).backward()


def test_sync_free_codebooks_equal_the_exact_form_where_the_stream_is_kept():
    """Dead codes in every step and a batch of at least V frames: the sync-free form draws
    what the exact form draws, so the codebooks are bit for bit the same."""
    for dead_code in ("reset", "before_ema"):
        states = []
        for sync_free in (False, True):
            torch.manual_seed(0)
            rvq = ResidualVectorQuantizer(
                8, 3, 16, kmeans_iters=3, threshold_ema_dead_code=1e9, dead_code=dead_code
            )
            set_sync_free(rvq.train(), sync_free)
            for seed in range(4):
                rvq(latents(seed=seed))
            states.append(rvq.state_dict())
        for key, value in states[0].items():
            assert torch.equal(value, states[1][key]), (dead_code, key)


def test_sync_free_training_converges_like_the_exact_form():
    """Small batches (fewer frames than codewords), occasional dead codes, dropout: other
    random streams, the same training: the reconstruction errors agree."""
    errors = {}
    for sync_free in (False, True):
        torch.manual_seed(0)
        rvq = ResidualVectorQuantizer(
            8, 4, 64, kmeans_iters=5, threshold_ema_dead_code=0.5, quantizer_dropout=0.5
        )
        set_sync_free(rvq.train(), sync_free)
        g = torch.Generator().manual_seed(1)
        centres = torch.randn(48, 8, generator=g) * 2
        for _ in range(60):
            pick = torch.randint(0, 48, (2 * 20,), generator=g)
            x = centres[pick] + 0.2 * torch.randn(40, 8, generator=g)
            rvq(x.view(2, 20, 8).transpose(1, 2))
        rvq.eval()
        test = centres[torch.randint(0, 48, (400,), generator=g)].T[None]  # (1, 8, 400)
        with torch.no_grad():
            errors[sync_free] = (rvq(test).z_q - test).pow(2).mean().item()
    assert errors[False] < 0.3 and errors[True] < 0.3, errors
    assert math.isclose(errors[False], errors[True], rel_tol=0.5, abs_tol=0.05), errors


def test_set_sync_free_reaches_every_part_and_checks_the_mode():
    rvq = _rvq()
    set_sync_free(nn.Sequential(rvq), True)
    assert all(m.sync_free is True for m in (rvq, rvq.layers[0], rvq.layers[0].codebook))
    assert rvq.is_sync_free(torch.device("cpu"))
    set_sync_free(rvq, "auto")
    assert not rvq.is_sync_free(torch.device("cpu"))
    assert rvq.is_sync_free(torch.device("cuda"))
    with pytest.raises(ValueError, match="sync_free 'on' not supported"):
        set_sync_free(rvq, "on")


def test_initialized_flag_is_read_once_per_change(monkeypatch):
    book = _rvq().layers[0].codebook
    assert not book.is_initialized()
    with no_host_reads(monkeypatch):  # unchanged: the host mirror answers
        assert not book.is_initialized()
    book.initialized.fill_(True)  # changed in place: read again
    assert book.is_initialized()
    book.load_state_dict({**book.state_dict(), "initialized": torch.tensor(False)})
    assert not book.is_initialized()
    moved = copy.deepcopy(book)
    moved.initialized = torch.tensor(True)  # a new tensor: read again
    assert moved.is_initialized() and not book.is_initialized()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sync_free_training_forward_on_cuda_has_no_synchronisation():
    """CUDA's own check: kernels that read back (bincount, nonzero, masked indexing) too."""
    for name in sorted(TRAINING_FORWARDS):
        torch.manual_seed(0)
        quantizer, blocks = TRAINING_FORWARDS[name]()
        if blocks is not None:
            continue
        quantizer = quantizer.cuda().train()  # "auto": sync-free on CUDA
        quantizer(latents().cuda())
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for seed in range(1, 3):
                out = quantizer(latents(seed=seed).cuda())
                (out.z_q.sum() + out.commitment_loss).backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
