"""The sync-free training step (issue 19, item 2): with fused optimizers a step that does
not log reads no tensor on the host; a non-finite step is skipped on the device through
the optimizers' ``found_inf`` and reported at the next log line; the step log reads all
pending values in one copy; the discriminator-turn draw needs no tensor."""

from __future__ import annotations

import math
import traceback
from collections import Counter
from pathlib import Path

import pytest
import torch

from codectk.config import GAN_STEP_ORDERS, build_train_config, load_yaml
from codectk.train.draws import as_float32, torch_cpu_uniform
from codectk.train.steplog import StepLog
from codectk.train.trainer import NonFiniteLossError, Trainer
from test.conftest import REPO
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401

TINY_DAC = REPO / "egs" / "mini_librispeech" / "codec1" / "conf" / "dac_16k_tiny.yaml"
HOST_READS = ("item", "__float__", "__bool__", "__int__", "__index__", "cpu", "tolist", "numpy")
FUSED = {"fused": True}


class HostReadSpy:
    """Counts calls of the tensor methods that copy a value to the host (a device
    synchronisation on a GPU), by method and the innermost codectk line that made them."""

    def __init__(self, monkeypatch):
        self.calls: Counter = Counter()
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, getattr(torch.Tensor, name)))

    def _wrap(self, name, real):
        def spied(tensor, *args, **kwargs):
            frames = traceback.extract_stack()[:-1]
            ours = [f for f in frames if "/codectk/" in f.filename]
            f = ours[-1] if ours else frames[-1]
            self.calls[(name, f"{f.filename.rsplit('/codectk/', 1)[-1]}:{f.lineno}")] += 1
            return real(tensor, *args, **kwargs)

        return spied


def _dac(tmp_path: Path, dumped, name: str = "exp", **overrides) -> Trainer:
    """The demo's tiny DAC (factorized codebooks with quantizer dropout 0.5, MPD + MRD)
    with fused AdamW for both networks and the discriminator from step 1."""
    conf = load_yaml(TINY_DAC)
    conf["optim_conf"] = {**conf["optim_conf"], **FUSED}
    conf["optim2_conf"] = {**conf["optim2_conf"], **FUSED}
    conf.update(
        batch_size=2,
        segment_duration=0.2,
        discriminator_start_step=0,
        log_interval=1000,
        valid_max_duration=0.5,
    )
    conf.update(overrides)
    return Trainer(build_train_config(conf), tmp_path / name, dumped["train"], dumped["valid"])


@pytest.mark.parametrize(
    ("order", "accum"), [*((o, 1) for o in GAN_STEP_ORDERS), ("d_first", 2), ("g_first", 2)]
)
def test_a_non_logging_step_reads_nothing_on_the_host(
    tmp_path: Path, dumped, monkeypatch, order: str, accum: int
):
    # discriminator_update_prob 0.5: steps with and without the discriminator's turn (the
    # draw is Python's); the factorized quantizer's dropout draws B numbers on the CPU
    # generator and never reads a tensor
    t = _dac(
        tmp_path, dumped, gan_step_order=order, accum_grad=accum, discriminator_update_prob=0.5
    )
    assert t.device_skip
    turns = []
    spy = HostReadSpy(monkeypatch)
    for step in (1, 2, 3, 4):
        t.step = step
        turns.append(t._discriminator_turn())
        parts = t._train_step(t.train_set[step])
    monkeypatch.undo()
    assert not spy.calls, f"host reads in a training step: {dict(spy.calls)}"
    assert set(turns) == {True, False}
    assert all(isinstance(v, torch.Tensor) for k, v in parts.items() if k != "n_quantizers")


def test_the_host_path_stays_where_the_optimizer_cannot_skip(tmp_path: Path, dumped):
    """The CPU default (not fused) and fp16's scaler keep the per-value host checks."""
    assert not _dac(tmp_path, dumped, "a", optim_conf={"lr": 1e-4}).device_skip
    assert not _dac(tmp_path, dumped, "b", amp="fp16").device_skip


def _poisoned(t: Trainer, monkeypatch, which: str, step: int) -> dict[int, tuple]:
    """Make ``which`` loss ("generator" or "discriminator") NaN at ``step``; returns a dict
    filled with (generator weights, discriminator weights, generator step counts) after
    every training step."""
    real = getattr(t.loss, which)

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return (total * float("nan") if t.step == step else total), parts

    monkeypatch.setattr(t.loss, which, poisoned)
    after: dict[int, tuple] = {}
    real_step = t._train_step

    def recorded(batch):
        parts = real_step(batch)
        after[t.step] = (
            [p.detach().clone() for p in t.codec.parameters()],
            [p.detach().clone() for p in t.disc.parameters()],
            {int(s["step"]) for s in t.opt.state.values()},
        )
        return parts

    monkeypatch.setattr(t, "_train_step", recorded)
    return after


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _fused_conf(**overrides) -> dict:
    conf = make_soundstream_conf(
        max_steps=4, valid_interval=4, log_interval=4, discriminator_start_step=0
    )
    conf["optim_conf"] = {**conf["optim_conf"], **FUSED}
    conf["optim2_conf"] = {**conf["optim2_conf"], **FUSED}
    conf.update(overrides)
    return conf


def test_stop_reports_the_first_bad_step_at_the_log_line(tmp_path: Path, dumped, monkeypatch):
    t = Trainer(build_train_config(_fused_conf()), tmp_path / "exp", *dumped.values())
    after = _poisoned(t, monkeypatch, "generator", step=2)
    with pytest.raises(
        NonFiniteLossError,
        match=r"non-finite generator loss \(nan\), non-finite generator gradient \(nan\) at "
        r"step 2 on utterances \['.+'\]: the generator's update of that step was skipped "
        r"on the device; last good checkpoint: .*checkpoint.pt \(step 0\)",
    ):
        t.run()
    assert t.step == 4  # found at the log line of step 4, not by a read at step 2
    g1, d1, _ = after[1]
    g2, d2, counts2 = after[2]
    assert _same(g1, g2) and counts2 == {1}  # the generator's update skipped on the device
    assert not _same(d1, d2)  # d_first: the discriminator stepped before the generator loss
    assert not _same(g2, after[3][0])  # and training went on


def test_skip_counts_and_leaves_the_step_out_of_the_means(
    tmp_path: Path, dumped, monkeypatch, caplog
):
    conf = _fused_conf(nonfinite_policy="skip")
    t = Trainer(build_train_config(conf), tmp_path / "exp", *dumped.values())
    after = _poisoned(t, monkeypatch, "discriminator", step=3)
    with caplog.at_level("WARNING", logger="codectk"):
        t.run()
    assert t.n_skipped == 1
    assert "skipped batch 3 (1 skipped so far): non-finite discriminator loss (nan)" in caplog.text
    assert "the discriminator's and the generator's update of that step" in caplog.text
    g2, d2, _ = after[2]
    g3, d3, counts3 = after[3]
    assert _same(g2, g3) and _same(d2, d3) and counts3 == {2}  # both updates skipped
    train = [r for r in t.history if r["phase"] == "train"]
    losses = [v for k, v in train[0].items() if k.startswith(("g_", "d_"))]
    assert len(train) == 1 and losses and all(math.isfinite(v) for v in losses)


def test_the_step_log_reads_every_pending_step_in_one_copy(monkeypatch):
    log = StepLog()
    for step in (1, 2):
        log.add(
            step,
            [f"u{step}"],
            {"g_total": torch.tensor(float(step)), "n_quantizers": 3},
            [("generator loss", torch.tensor(float("inf") if step == 2 else 1.0))],
            [("generator", torch.tensor(float(step == 2)))],
        )
    copies = []
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: copies.append(1) or real(t))
    one, two = log.read()
    assert len(copies) == 1 and len(log) == 0
    assert one.parts == {"g_total": 1.0, "n_quantizers": 3.0} and not one.skipped
    assert two.skipped == ["generator"] and two.nonfinite == [("generator loss", float("inf"))]


def test_the_discriminator_turn_draw_is_the_old_torch_draw():
    p = 2 / 3
    for seed in (0, 1, 1234):
        for step in range(1, 300):
            s = seed * 1_000_003 + step
            g = torch.Generator().manual_seed(s)
            assert torch_cpu_uniform(s) == float(torch.rand((), generator=g))
            assert (torch_cpu_uniform(s) < as_float32(p)) == bool(
                torch.rand((), generator=torch.Generator().manual_seed(s)) < p
            )


def _ddp_worker(rank: int, world: int, rdv: str, out: str, train: str, valid: str, conf: dict):
    """One rank of a fused DDP run whose rank 1 alone has a NaN loss at step 2."""
    import datetime

    import torch.distributed as dist

    from codectk.train.distributed import DistInfo

    dist.init_process_group(
        "gloo",
        init_method=f"file://{rdv}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        torch.set_num_threads(1)
        info = DistInfo(rank=rank, world_size=world)
        t = Trainer(build_train_config(conf), Path(out) / "exp", train, valid, dist_info=info)
        real = t.loss.generator

        def poisoned(*args, **kwargs):
            total, parts = real(*args, **kwargs)
            return (total * float("nan") if t.step == 2 and rank == 1 else total), parts

        t.loss.generator = poisoned
        try:
            t.run()
            message = ""
        except NonFiniteLossError as exc:
            message = str(exc)
        torch.save(
            {"message": message, "step": t.step, "codec": t.codec.state_dict()},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_skip_together_and_stop_at_the_same_log_line(tmp_path: Path, dumped):
    import torch.multiprocessing as mp

    from test.train.test_ddp import _deterministic_conf

    conf = _deterministic_conf(max_steps=4, log_interval=4, valid_interval=4)
    conf["optim_conf"] = {**conf["optim_conf"], **FUSED}
    conf["optim2_conf"] = {**conf["optim2_conf"], **FUSED}
    args = (str(tmp_path / "rdv"), str(tmp_path), str(dumped["train"]), str(dumped["valid"]))
    mp.spawn(_ddp_worker, args=(2, *args, conf), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 4
    assert "at step 2 on utterances" in r0["message"] and "(rank 0 of 2)" in r0["message"]
    assert "non-finite generator loss (nan)" in r1["message"] and "(rank 1 of 2)" in r1["message"]
    assert "the generator's update of that step was skipped" in r0["message"]
    for k, v in r0["codec"].items():
        assert torch.equal(v, r1["codec"][k]), f"codec.{k} differs between ranks"
