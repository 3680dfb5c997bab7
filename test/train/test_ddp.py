"""DDP training on 2 CPU processes (gloo): ranks stay identical and match one process
trained on the same global batch; AMP, gradient accumulation, epochs and time budget."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from codectk.config import build_train_config
from codectk.models.soundstream import soundstream_tiny_conf
from codectk.train.distributed import DistInfo, launch_command
from codectk.train.trainer import Trainer, TrainingTimeBudgetReached
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401


def _deterministic_conf(**overrides) -> dict:
    """No rank-local randomness (k-means init and dead-code replacement draw from each
    rank's own frames), so 2 ranks x 2 examples must equal 1 process x 4."""
    conf = make_soundstream_conf(
        codec_conf=soundstream_tiny_conf(
            encoder=dict(n_filters=4, dimension=16, n_residual_layers=1),
            quantizer=dict(kmeans_init=False, threshold_ema_dead_code=0.0),
            quantizer_dropout=0.0,
        ),
        batch_size=4,
        max_steps=4,
        valid_interval=4,
        log_interval=2,
        discriminator_start_step=2,
        grad_clip=0.0,
    )
    conf.update(overrides)
    return conf


def _worker(rank: int, world: int, rdv: str, out: str, train: str, valid: str, conf: dict):
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rdv}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        torch.set_num_threads(1)
        t = Trainer(
            build_train_config(conf),
            Path(out) / "exp",
            train,
            valid,
            dist_info=DistInfo(rank=rank, world_size=world),
        )
        t.run()
        torch.save(
            {"codec": t.codec.state_dict(), "disc": t.disc.state_dict(), "history": t.history},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("batch", ["none", "both"])
def test_two_ranks_stay_identical_and_match_one_process(tmp_path: Path, dumped, batch: str):
    conf = _deterministic_conf(discriminator_batch=batch)
    args = (str(tmp_path / "rdv"), str(tmp_path), str(dumped["train"]), str(dumped["valid"]))
    mp.spawn(_worker, args=(2, *args, conf), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("codec", "disc"):
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"{part}.{k} differs between ranks"
    single = Trainer(
        build_train_config(conf), tmp_path / "single", dumped["train"], dumped["valid"]
    )
    single.run()
    # Adam divides by sqrt(v): a gradient that is zero up to rounding can move a weight by
    # up to lr (1e-3) either way, so single entries may differ by a few 1e-5
    moved = 0
    start = Trainer(build_train_config(conf), tmp_path / "start", dumped["train"], dumped["valid"])
    for k, v in single.codec.state_dict().items():
        torch.testing.assert_close(
            r0["codec"][k], v, rtol=1e-3, atol=1e-4, msg=lambda m, k=k: f"codec.{k}: {m}"
        )
        moved += not torch.equal(v, start.codec.state_dict()[k])
    # real and fake in one call per rank (2 + 2) and in one process (4 + 4) round the
    # discriminator's sums otherwise: an entry whose gradient is zero up to rounding may
    # then move by up to 2 lr per step (3 discriminator steps) the other way
    d_atol = 1e-4 if batch == "none" else 2 * 1e-3 * 3
    for k, v in single.disc.state_dict().items():
        torch.testing.assert_close(
            r0["disc"][k], v, rtol=1e-3, atol=d_atol, msg=lambda m, k=k: f"disc.{k}: {m}"
        )
    assert moved > 10, "training did not change the weights"
    # rank 0 alone wrote the experiment; validation covered every utterance once
    exp = tmp_path / "exp"
    assert (exp / "checkpoint.pt").exists() and (exp / "valid.mel_distance.ave.pt").exists()
    v_ddp = [r["mel_distance"] for r in r0["history"] if r["phase"] == "valid"]
    v_one = [r["mel_distance"] for r in single.history if r["phase"] == "valid"]
    assert v_ddp == pytest.approx(v_one, rel=1e-4)


def test_gradient_accumulation_matches_one_batch(tmp_path: Path, dumped):
    # EMA codebooks update once per forward, i.e. per micro-batch: hold them still here
    conf = _deterministic_conf(discriminator=None, max_steps=3, valid_interval=3)
    conf["codec_conf"]["ema_decay"] = 1.0 - 1e-7
    a = Trainer(build_train_config(conf), tmp_path / "a", dumped["train"], dumped["valid"])
    a.run()
    b = Trainer(
        build_train_config({**conf, "accum_grad": 2}),
        tmp_path / "b",
        dumped["train"],
        dumped["valid"],
    )
    b.run()
    for k, v in a.codec.state_dict().items():
        torch.testing.assert_close(
            b.codec.state_dict()[k], v, rtol=1e-3, atol=1e-4, msg=lambda m, k=k: f"{k}: {m}"
        )


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path: Path, dumped, amp: str):
    t = Trainer(
        build_train_config(make_soundstream_conf(amp=amp, max_steps=4, valid_interval=4)),
        tmp_path / amp,
        dumped["train"],
        dumped["valid"],
    )
    t.run()
    train = [r for r in t.history if r["phase"] == "train"]
    assert train and all(torch.isfinite(torch.tensor(r["g_total"])) for r in train)
    for v in t.codec.state_dict().values():
        assert v.dtype != torch.bfloat16 and v.dtype != torch.float16  # master weights fp32
    if amp == "fp16":
        state = torch.load(tmp_path / amp / "checkpoint.pt", weights_only=True)
        assert state["scaler"] is not None


def test_max_epochs_and_time_budget(tmp_path: Path, dumped):
    t = Trainer(
        build_train_config(make_soundstream_conf(max_steps=10**6, max_epochs=0.01)),
        tmp_path / "epochs",
        dumped["train"],
        dumped["valid"],
    )
    per_epoch = t.train_set.lengths.sum() / (2 * t.train_set.segment_length)
    assert t.max_steps == max(1, int(-(-0.01 * per_epoch // 1)))
    budget = Trainer(
        build_train_config(make_soundstream_conf(max_steps=10**6, max_train_time="1s")),
        tmp_path / "budget",
        dumped["train"],
        dumped["valid"],
    )
    with pytest.raises(TrainingTimeBudgetReached, match="re-run stage 5"):
        budget.run()
    state = torch.load(tmp_path / "budget" / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 1
    history = json.loads((tmp_path / "budget" / "history.json").read_text())
    assert history[-1]["phase"] == "valid" and history[-1]["step"] == state["step"]


def test_launch_commands():
    cmd = launch_command(["--config", "c.yaml"], 4)
    assert cmd[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "4",
        "--standalone",
        "-m",
        "codectk.bin.train",
        "--config",
        "c.yaml",
    ]
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "", "SLURM_JOB_ID": "42"}
    multi = launch_command(["--config", "c.yaml"], 8, num_nodes=2, env=env)
    assert multi[:5] == ["srun", "--nodes", "2", "--ntasks-per-node", "1"]
    assert "--nnodes" in multi and multi[multi.index("--rdzv_id") + 1] == "42"
    with pytest.raises(RuntimeError, match="SLURM allocation"):
        launch_command([], 8, num_nodes=2, env={})
    assert os.environ.get("CODECTK_LAUNCHED") is None
