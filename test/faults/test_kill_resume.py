"""Killed jobs lose nothing: training resumes to identical weights, a kill during a
checkpoint write leaves the previous checkpoint loadable, a killed stage re-runs clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from codectk.bin import dump_wav
from codectk.config import build_train_config
from codectk.io.datadir import read_scp
from codectk.io.modelfile import load_file, save_atomic
from codectk.train.trainer import NonFiniteLossError, Trainer, TrainingOutOfMemoryError
from test.conftest import REPO
from test.helpers import make_soundstream_conf, write_conf


def _train_cmd(conf: Path, dumped, out: Path, max_steps: int) -> list[str]:
    return [
        sys.executable, "-m", "codectk.bin.train", "--config", str(conf), "--train_data", str(dumped["train"]),
        "--valid_data", str(dumped["valid"]), "--output_dir", str(out), "--max_steps", str(max_steps),
        "--valid_interval", "3", "--num_threads", "1",
    ]  # fmt: skip


def test_sigkill_then_resume_gives_identical_weights(tmp_path: Path, dumped):
    conf = write_conf(tmp_path / "conf.yaml")
    straight = tmp_path / "straight"
    subprocess.run(
        _train_cmd(conf, dumped, straight, 10), check=True, cwd=REPO, capture_output=True
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(conf, dumped, killed, 10),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once a mid-run checkpoint exists
        ckpt = killed / "checkpoint.pt"
        if ckpt.exists() and load_file(ckpt, "codectk-train-state")["step"] >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere after that checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_file(killed / "checkpoint.pt", "codectk-train-state")["step"] < 10, (
        "run finished before the kill"
    )
    subprocess.run(_train_cmd(conf, dumped, killed, 10), check=True, cwd=REPO, capture_output=True)
    a = load_file(straight / "checkpoint.pt", "codectk-train-state")
    b = load_file(killed / "checkpoint.pt", "codectk-train-state")
    assert a["step"] == b["step"] == 10
    for key in ("codec", "discriminator"):
        for name, value in a[key].items():
            torch.testing.assert_close(value, b[key][name], rtol=0, atol=0, msg=f"{key}.{name}")


_WRITER = """
import os, signal, sys
from codectk.io.fileio import atomic_replace_from
def half(tmp):
    with open(tmp, "wb") as f:
        f.write(b"partial")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
atomic_replace_from(half, sys.argv[1])
"""


def test_kill_during_checkpoint_write_keeps_previous(tmp_path: Path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"format": "codectk-train-state", "version": 1, "step": 7}, path)
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(path)], cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    assert load_file(path, "codectk-train-state")["step"] == 7


def test_killed_dump_reruns_complete(tmp_path: Path, small_datadir: Path):
    args = [
        "--fs",
        "24000",
        "--in_scp",
        str(small_datadir / "wav.scp"),
        "--out_wav_dir",
        str(tmp_path / "wav"),
        "--out_dir",
        str(tmp_path / "out"),
    ]
    proc = subprocess.Popen([sys.executable, "-m", "codectk.bin.dump_wav", *args], cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "wav").glob("*.wav")):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    dump_wav.main(args)
    wav = read_scp(tmp_path / "out" / "wav.scp")
    lens = read_scp(tmp_path / "out" / "utt2num_samples")
    assert sorted(wav) == sorted(read_scp(small_datadir / "wav.scp")) == sorted(lens)
    assert len(list((tmp_path / "wav").glob("*.wav"))) == len(wav)  # no stale temporary files


def _trainer(tmp_path: Path, dumped, **overrides) -> Trainer:
    return Trainer(
        build_train_config(make_soundstream_conf(**overrides)),
        tmp_path / "exp",
        dumped["train"],
        dumped["valid"],
    )


def test_nonfinite_skip_policy_counts_and_continues(tmp_path: Path, dumped, monkeypatch, caplog):
    t = _trainer(
        tmp_path, dumped, max_steps=4, nonfinite_policy="skip", discriminator_start_step=100
    )
    real = t.loss.generator

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return (total * float("nan") if t.step in (2, 3) else total), parts

    monkeypatch.setattr(t.loss, "generator", poisoned)
    t.run()
    assert t.n_skipped == 2 and t.step == 4
    assert "skipped batch 3 (2 skipped so far)" in caplog.text


def test_nan_names_last_checkpoint_step(tmp_path: Path, dumped, monkeypatch):
    t = _trainer(tmp_path, dumped, max_steps=6, valid_interval=3, discriminator_start_step=100)
    real = t.loss.generator

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return (total * float("inf") if t.step == 5 else total), parts

    monkeypatch.setattr(t.loss, "generator", poisoned)
    with pytest.raises(
        NonFiniteLossError, match=r"at step 5 on utterances .*checkpoint\.pt \(step 3\)"
    ):
        t.run()


def test_out_of_memory_names_batch_and_option(tmp_path: Path, dumped, monkeypatch):
    t = _trainer(tmp_path, dumped, max_steps=2)

    def oom(batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(t, "_train_step", oom)
    with pytest.raises(
        TrainingOutOfMemoryError,
        match=r"step 1 on utterances \[.*\] \(batch_size 2 .*--batch_size 1",
    ):
        t.run()
