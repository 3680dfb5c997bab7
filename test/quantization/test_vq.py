"""Tests of codectk.quantization.vq: EMA codebook, k-means init, dead codes, DDP sync."""

import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from codectk.quantization.vq import EuclideanCodebook, VectorQuantizer, kmeans


def gaussian_mixture(n, dim, n_centres, seed, spread=0.05, scale=3.0):
    """(n, dim) samples around n_centres fixed centres (centres depend on dim only)."""
    centres = torch.randn(n_centres, dim, generator=torch.Generator().manual_seed(123)) * scale
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, n_centres, (n,), generator=g)
    return centres[pick] + spread * torch.randn(n, dim, generator=g), centres


def test_kmeans_init_places_codewords_on_the_data():
    torch.manual_seed(0)
    x, centres = gaussian_mixture(2000, 4, n_centres=8, seed=1)
    book = EuclideanCodebook(4, 64, kmeans_init=True, kmeans_iters=10)
    assert not book.initialized
    book.train()
    book(x)
    assert book.initialized
    # each codeword is a cluster mean: within a few spreads of one centre ...
    assert torch.cdist(book.embed, centres).min(dim=1).values.max() < 0.2
    # ... and every centre has a codeword
    assert torch.cdist(centres, book.embed).min(dim=1).values.max() < 0.2


def test_ema_training_reduces_quantization_error():
    torch.manual_seed(0)
    x, _ = gaussian_mixture(1024, 8, n_centres=16, seed=2, spread=0.3)
    book = EuclideanCodebook(8, 32, kmeans_init=False, threshold_ema_dead_code=0.0, decay=0.8)
    book.train()

    def error():
        return (book.decode(book.encode(x)) - x).pow(2).mean().item()

    before = error()
    for _ in range(20):
        book(x)
    assert error() < 0.5 * before


def test_dead_codes_are_replaced_by_batch_vectors():
    torch.manual_seed(0)
    x, _ = gaussian_mixture(256, 4, n_centres=4, seed=3)
    book = EuclideanCodebook(4, 16, kmeans_init=False, threshold_ema_dead_code=1.0)
    with torch.no_grad():
        book.embed[:4] = x[:4]
        book.embed[4:] = 100.0  # far from every frame: never chosen
        book.embed_avg.copy_(book.embed)
    book.train()
    book(x)
    dead = book.embed[4:]
    assert (dead[:, None, :] == x[None, :, :]).all(dim=2).any(dim=1).all()  # batch rows
    assert torch.all(book.cluster_size[4:] == 1.0)  # restarted at the threshold
    assert torch.all(book.embed[:4].abs() < 50)


def test_no_update_in_eval_or_encode():
    torch.manual_seed(0)
    x, _ = gaussian_mixture(256, 4, n_centres=4, seed=4)
    book = EuclideanCodebook(4, 16, kmeans_init=False)
    state = {k: v.clone() for k, v in book.state_dict().items()}
    book.eval()
    book(x)
    book.train()
    book.encode(x)
    for k, v in book.state_dict().items():
        assert torch.equal(v, state[k]), k
    book(x)
    assert not torch.equal(book.embed, state["embed"])


def test_unknown_codebook_options_raise_naming_the_choices():
    with pytest.raises(ValueError, match=r"ema_init 'x' not supported; choose one of"):
        EuclideanCodebook(4, 8, ema_init="x")
    with pytest.raises(ValueError, match=r"dead_code 'x' .*\['reset', 'before_ema'\]"):
        EuclideanCodebook(4, 8, dead_code="x")
    with pytest.raises(ValueError, match=r"random_init 'x' not supported"):
        EuclideanCodebook(4, 8, random_init="x")


def test_unweighted_ema_init_keeps_kmeans_counts_and_unscaled_sums():
    torch.manual_seed(0)
    x = torch.randn(5, 4).repeat(40, 1)  # 5 distinct frames for 16 codewords: empty clusters
    book = EuclideanCodebook(4, 16, kmeans_iters=5, ema_init="unweighted", decay=0.5)
    book.train()
    torch.manual_seed(1)
    book.init_embed_(x)
    torch.manual_seed(1)
    means, counts = kmeans(x, 16, 5)
    assert torch.equal(book.embed, means) and torch.equal(book.embed_avg, means)
    assert torch.equal(book.cluster_size, counts) and (counts == 0).any()
    plain = EuclideanCodebook(4, 16, kmeans_init=False, ema_init="unweighted")
    assert torch.equal(plain.cluster_size, torch.zeros(16))
    assert torch.equal(plain.embed_avg, plain.embed)


def test_unweighted_ema_init_without_kmeans_scales_unused_codewords_by_decay_over_eps():
    """AudioDec's start: codewords unused by the first batch end at 0.8 / 1e-5 times."""
    torch.manual_seed(0)
    book = EuclideanCodebook(
        8,
        64,
        kmeans_init=False,
        threshold_ema_dead_code=0.0,
        decay=0.8,
        ema_init="unweighted",
        random_init="normal",
    ).train()
    start = book.embed.clone()
    x = torch.randn(100, 8)
    _, codes = book(x)
    unused = torch.ones(64, dtype=torch.bool)
    unused[codes.unique()] = False
    ratio = book.embed[unused].norm(dim=1) / start[unused].norm(dim=1)
    assert unused.any() and torch.allclose(ratio, torch.full_like(ratio, 8e4), rtol=1e-3)
    for _ in range(5):
        assert not unused[book(x)[1].unique()].any()  # never chosen again


def test_normal_random_init_is_a_d_by_v_draw():
    torch.manual_seed(3)
    book = EuclideanCodebook(4, 16, kmeans_init=False, random_init="normal")
    torch.manual_seed(3)
    assert torch.equal(book.embed, torch.randn(4, 16).t())


def test_before_ema_dead_codes_are_overwritten_by_the_update_but_drawn():
    x, _ = gaussian_mixture(64, 4, n_centres=4, seed=6)
    books = {}
    for name, threshold in (("before_ema", 2.0), ("none", 0.0)):
        torch.manual_seed(0)
        book = EuclideanCodebook(
            4, 16, kmeans_init=False, threshold_ema_dead_code=threshold, dead_code="before_ema"
        )
        book.train()
        torch.manual_seed(1)
        book(x)
        books[name] = (book, torch.rand(()))
    (replaced, r1), (untouched, r0) = books["before_ema"], books["none"]
    for key in ("embed", "embed_avg", "cluster_size"):
        assert torch.equal(getattr(replaced, key), getattr(untouched, key)), key
    assert r1 != r0  # the replacement drew 16 frames from the random stream
    assert (replaced.cluster_size < 2.0).any()  # there were dead codes to replace


@pytest.mark.parametrize("codebook_dim", [None, 3])
def test_vector_quantizer_codes_and_straight_through(codebook_dim):
    torch.manual_seed(0)
    vq = VectorQuantizer(6, 16, codebook_dim=codebook_dim, kmeans_init=True)
    z = torch.randn(2, 6, 10, requires_grad=True)
    z_q, codes, commitment = vq(z)
    assert codes.shape == (2, 10) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 16
    assert z_q.shape == z.shape and commitment.item() > 0
    z_q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    if codebook_dim is None:
        torch.testing.assert_close(z.grad, torch.ones_like(z))
    vq.eval()
    with torch.no_grad():
        torch.testing.assert_close(vq.decode(vq.encode(z)), vq(z)[0], rtol=0, atol=1e-6)


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
        from codectk.quantization.rvq import ResidualVectorQuantizer

        # 1) different seeds and data per rank, k-means init, dead codes, quantizer dropout
        torch.manual_seed(rank)
        rvq = ResidualVectorQuantizer(4, 3, 16, kmeans_iters=5, quantizer_dropout=1.0)
        rvq.train()
        used = []
        for step in range(6):
            x, _ = gaussian_mixture(96, 4, n_centres=6, seed=10 * rank + step)
            used.append(rvq(x.view(8, 12, 4).transpose(1, 2)).n_quantizers)  # (B, D, F)
        # 2) same start, no randomness: must equal one process on the concatenated data
        torch.manual_seed(0)
        book = EuclideanCodebook(4, 8, kmeans_init=False, threshold_ema_dead_code=0.0)
        book.train()
        for step in range(3):
            book(gaussian_mixture(64, 4, n_centres=6, seed=100 * step + rank)[0])
        torch.save(
            {"rvq": rvq.state_dict(), "used": used, "book": book.state_dict()},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_ddp_codebooks_stay_identical(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["used"] == r1["used"]
    assert len(set(r0["used"])) > 1  # dropout did vary K'
    for key, value in r0["rvq"].items():
        assert torch.equal(value, r1["rvq"][key]), key
    torch.manual_seed(0)
    ref = EuclideanCodebook(4, 8, kmeans_init=False, threshold_ema_dead_code=0.0)
    ref.train()
    for step in range(3):
        ref(
            torch.cat(
                [gaussian_mixture(64, 4, n_centres=6, seed=100 * step + r)[0] for r in (0, 1)]
            )
        )
    for key, value in ref.state_dict().items():
        assert torch.equal(r0["book"][key], r1["book"][key]), key
        torch.testing.assert_close(r0["book"][key], value, rtol=1e-5, atol=1e-6)
