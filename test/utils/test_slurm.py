"""utils/slurm.pl against a real single-node SLURM cluster started on localhost.

The module's fixture starts munged, slurmctld and slurmd with tools/slurm_local.sh (the
Debian packages munge, slurmctld, slurmd and slurm-client; tools/install_system_deps.sh
installs them) and stops them at the end. Without those binaries the tests are skipped.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codectk.io.datadir import read_scp
from test.conftest import CORPUS, REPO
from test.utils.test_run_pl import read_log

pytestmark = pytest.mark.slurm
SLURM_LOCAL = REPO / "tools" / "slurm_local.sh"
SLURM_PL = REPO / "utils" / "slurm.pl"
CONF = REPO / "conf" / "slurm.conf"
BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")


def free_port_pair() -> int:
    """A port P such that P and P + 1 are both free on localhost."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two adjacent free ports on localhost")


def start_cluster(state: Path, *opts: str) -> dict[str, str]:
    """Start a cluster in ``state``; return the environment that points at it."""
    port = free_port_pair()
    proc = subprocess.run(
        ["bash", str(SLURM_LOCAL), "--port", str(port), *opts, "start", str(state)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, f"slurm_local.sh start failed:\n{proc.stdout}\n{proc.stderr}"
    return {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "LC_ALL": "C"}


def stop_cluster(state: Path) -> None:
    subprocess.run(["bash", str(SLURM_LOCAL), "stop", str(state)], capture_output=True, timeout=90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF) of a running local cluster."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(
            f"SLURM not installed (missing {', '.join(missing)}); "
            "run tools/install_system_deps.sh (Debian packages munge slurmctld slurmd slurm-client)"
        )
    state = tmp_path_factory.mktemp("slurm")
    try:
        yield start_cluster(state)
    finally:
        stop_cluster(state)


def slurm_pl(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SLURM_PL), "--config", str(CONF), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def job_info(env: dict[str, str]) -> str:
    """``scontrol -o show job``: every job the controller still remembers."""
    proc = subprocess.run(
        ["scontrol", "-o", "show", "job"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_job_array_runs_and_writes_run_pl_logs(cluster, tmp_path):
    # "JOB" inside $SLURM_ARRAY_JOB_ID would be replaced too (Kaldi's rule): use another name.
    r = slurm_pl(
        cluster, tmp_path, "IDX=1:3", "exp/log/hello.IDX.log",
        "bash", "-c", "echo hello IDX task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    logs = sorted((tmp_path / "exp" / "log").glob("hello.*.log"))
    assert [p.name for p in logs] == ["hello.1.log", "hello.2.log", "hello.3.log"]
    array_ids = set()
    for job, log in enumerate(logs, 1):
        cmd, body, threads, code = read_log(log)
        assert cmd == f"bash -c 'echo hello {job} task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID'"
        assert (threads, code) == (1, 0)
        m = re.fullmatch(rf"hello {job} task {job} of (\d+)", body[0])
        assert m and len(body) == 1, body
        array_ids.add(m[1])
    assert len(array_ids) == 1  # one sbatch job array
    (array_id,) = array_ids
    info = job_info(cluster)
    for job in (1, 2, 3):
        assert re.search(rf"ArrayJobId={array_id} ArrayTaskId={job} .*JobState=COMPLETED", info), (
            info
        )
    script = (tmp_path / "exp" / "log" / "q" / "hello.sh").read_text()
    assert "--array 1-3 " in script


def test_failing_task_fails_the_call_and_is_named(cluster, tmp_path):
    r = slurm_pl(
        cluster, tmp_path, "JOB=1:3", "log/f.JOB.log", "bash", "-c", "[ JOB -ne 2 ] || exit 3"
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert re.fullmatch(
        r"slurm\.pl: 1 / 3 failed \(SLURM job \d+\), log is in log/f\.2\.log", lines[0]
    )
    assert lines[1] == "slurm.pl:   task 2: exit code 3, log is in log/f.2.log"
    assert lines[2] == "slurm.pl: the last lines of log/f.2.log:"
    assert lines[3].startswith("  # bash -c")  # the log's own first lines, then nothing
    assert read_log(tmp_path / "log" / "f.2.log")[3] == 3
    assert read_log(tmp_path / "log" / "f.1.log")[3] == 0
    assert read_log(tmp_path / "log" / "f.3.log")[3] == 0


def test_quoting_pipes_and_a_job_folder_as_run_pl(cluster, tmp_path):
    args = ["a b", "it's", 'say "hi"', "", "back\\slash", "  two  spaces ", "$ a"]
    r = slurm_pl(
        cluster,
        tmp_path,
        "JOB=3",
        "exp/JOB/log/p.log",
        "printf",
        "[%s]\\n",
        *args,
        "JOB",
        "|",
        "cat",
    )
    assert r.returncode == 0, r.stderr
    body = read_log(tmp_path / "exp" / "3" / "log" / "p.log")[1]
    assert body == [f"[{a}]" for a in args] + ["[3]"]
    assert (tmp_path / "exp" / "q" / "p.sh").is_file()  # q/ above the per-job folder


def test_options_reach_sbatch(cluster, tmp_path):
    r = slurm_pl(
        cluster, tmp_path, "--num_threads", "2", "--mem", "50M", "--time", "10",
        "--max-jobs-run", "1", "JOB=2:3", "log/o.JOB.log",
        "bash", "-c", "echo $SLURM_CPUS_PER_TASK $SLURM_MEM_PER_NODE; date +%s%N; sleep 0.2; date +%s%N",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "log" / "o.1.log").exists()
    spans = []
    for job in (2, 3):
        _, body, threads, code = read_log(tmp_path / "log" / f"o.{job}.log")
        assert (threads, code) == (2, 0)
        assert body[0] == "2 50"  # --cpus-per-task 2, --mem 50M
        spans.append((int(body[1]), int(body[2])))
    spans.sort()
    assert spans[1][0] >= spans[0][1], spans  # --max-jobs-run 1: one task at a time
    script = (tmp_path / "log" / "q" / "o.sh").read_text()
    assert "--time 10 " in script and "--array 2-3%1 " in script
    assert re.search(r"TimeLimit=00:10:00 ", job_info(cluster))


MEM_HOG = "x = bytearray(300 << 20); import time; time.sleep(4)"


def check_killed_for_memory(env: dict[str, str], cwd: Path) -> None:
    r = slurm_pl(
        env, cwd, "--mem", "60M", "JOB=1:2", "log/m.JOB.log",
        "bash", "-c", f"[ JOB -eq 1 ] || exit 0; {sys.executable} -c '{MEM_HOG}'",
    )  # fmt: skip
    assert r.returncode == 1
    assert "slurm.pl:   task 1: killed for memory (--mem 60M), log is in log/m.1.log" in r.stderr
    assert "task 2" not in r.stderr
    assert read_log(cwd / "log" / "m.1.log")[3] == 137
    assert read_log(cwd / "log" / "m.2.log")[3] == 0


def test_task_over_its_memory_is_reported_killed_for_memory(cluster, tmp_path):
    # Here the cgroup memory controller when the machine lets slurmd use it (the task
    # ends in state OUT_OF_MEMORY), else slurmd's 1 s memory sampling (state FAILED,
    # slurmstepd's "exceeded memory limit" message); the next test covers the latter.
    check_killed_for_memory(cluster, tmp_path)


def test_memory_sampling_kill_is_reported_killed_for_memory(cluster, tmp_path):
    state = tmp_path / "sampling"
    try:
        env = start_cluster(state, "--mem_limit", "sampling")
        check_killed_for_memory(env, tmp_path)
        info = job_info(env)
        assert re.search(r"ArrayTaskId=1 .*JobState=FAILED", info), info
        log = (tmp_path / "log" / "m.1.log").read_text()
        assert "# slurm.pl: SLURM job" in log and "ended in state FAILED: killed for memory" in log
    finally:
        stop_cluster(state)


def test_usage_and_config_errors(cluster, tmp_path):
    r = slurm_pl(cluster, tmp_path, "--no_such_option", "1", "x.log", "true")
    assert r.returncode == 2
    assert "option --no_such_option is not described in" in r.stderr
    assert slurm_pl(cluster, tmp_path, "JOB=1:2", "same.log", "true").returncode == 2
    assert slurm_pl(cluster, tmp_path, "--max_jobs_run", "0", "x.log", "true").returncode == 2
    bad = tmp_path / "bad.conf"
    bad.write_text("command sbatch\noption mem=* --mem\n")
    r = subprocess.run(
        [str(SLURM_PL), "--config", str(bad), "x.log", "true"],
        cwd=tmp_path, env=cluster, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and f"{bad} line 2" in r.stderr
    # sbatch refuses what the cluster cannot give (no GPUs, no partition "gpu").
    r = slurm_pl(cluster, tmp_path, "--gpu", "1", "g.log", "true")
    assert r.returncode == 1 and "sbatch refused the job" in r.stderr


def test_unstartable_job_is_reported_and_interrupt_cancels_it(cluster, tmp_path):
    # Two nodes on a one-node cluster: SLURM keeps the job pending for ever.
    proc = subprocess.Popen(
        [str(SLURM_PL), "--config", str(CONF), "--num_nodes", "2", "log/n.log", "true"],
        cwd=tmp_path, env=cluster, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        assert ready, "no word from slurm.pl on the pending job within 30 s"
        line = proc.stderr.readline()
        m = re.fullmatch(
            r"slurm\.pl: SLURM job (\d+) is pending with reason Partition\w+; it may never start .*\n",
            line,
        )
        assert m, line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 128 + signal.SIGINT
    finally:
        proc.kill()
        proc.wait()
    assert f"slurm.pl: got SIGINT; cancelled SLURM job {m[1]}" in proc.stderr.read()
    assert re.search(rf"JobId={m[1]} .*JobState=CANCELLED", job_info(cluster))


@pytest.mark.recipe
def test_recipe_stages_through_slurm(cluster, tmp_path):
    """mini_librispeech with cmd_backend=slurm: stages 2, 6 and 7 run as SLURM jobs
    (stages 3-5 through run.pl; stage 5 trains 0 steps)."""
    recipe_src = REPO / "egs" / "mini_librispeech" / "codec1"
    d = tmp_path / "codec1"
    d.mkdir()
    for name in ("run.sh", "path.sh", "db.sh"):
        shutil.copy(recipe_src / name, d / name)
    shutil.copytree(recipe_src / "local", d / "local")
    shutil.copytree(recipe_src / "conf", d / "conf")
    (d / "codec.sh").symlink_to(REPO / "egs" / "TEMPLATE" / "codec1" / "codec.sh")
    (d / "utils").symlink_to(REPO / "utils")
    cmd_sh = (recipe_src / "cmd.sh").read_text()
    assert cmd_sh.count("\ncmd_backend=local\n") == 1

    def run(backend: str, *args: str) -> str:
        (d / "cmd.sh").write_text(
            cmd_sh.replace("\ncmd_backend=local\n", f"\ncmd_backend={backend}\n")
        )
        env = {**cluster, "MAIN_ROOT": str(REPO), "MINI_LIBRISPEECH": str(CORPUS)}
        env["OMP_NUM_THREADS"] = "1"
        proc = subprocess.run(
            ["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"run.sh {args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    train_args = ("--train_args", "--max_steps 0")
    run("slurm", "--stage", "1", "--stop_stage", "2")
    run("local", "--stage", "3", "--stop_stage", "5", *train_args)
    out = run("slurm", "--stage", "6", "--stop_stage", "7", *train_args)
    assert "Stage 7 done" in out

    exp = d / "exp" / "codec_soundstream_16k_tiny_max_steps0"
    dump_logs = sorted((d / "dump" / "raw" / "test" / "logdir").glob("dump_wav.*.log"))
    decode_logs = sorted((exp / "decode_test" / "logdir").glob("decode.*.log"))
    score_log = exp / "scores" / "test" / "score.log"
    assert len(dump_logs) == 2 and len(decode_logs) == 2
    for log in [*dump_logs, *decode_logs, score_log]:
        assert read_log(log)[3] == 0, log
    # They ran as SLURM jobs: the batch scripts, and the controller remembers them.
    assert (d / "dump" / "raw" / "test" / "logdir" / "q" / "dump_wav.sh").is_file()
    assert (exp / "decode_test" / "logdir" / "q" / "decode.sh").is_file()
    assert (exp / "scores" / "test" / "q" / "score.sh").is_file()
    info = job_info(cluster)
    for name in ("dump_wav", "decode", "score"):
        assert f"JobName={name} " in info, name
    assert not (exp / "q").exists()  # stage 5 (training) went through run.pl
    assert not (d / "exp" / "codec_stats_16000" / "logdir" / "q").exists()  # stage 4 too
    assert set(read_scp(exp / "decode_test" / "wav.scp")) == set(
        read_scp(d / "dump" / "raw" / "test" / "wav.scp")
    )
    assert (exp / "scores" / "test" / "summary.json").is_file()


def test_append_log_keeps_earlier_runs(cluster, tmp_path):
    for word in ("first", "second"):
        r = slurm_pl(cluster, tmp_path, "--append-log", "true", "log/train.log", "echo", word)
        assert r.returncode == 0, r.stderr
    text = (tmp_path / "log" / "train.log").read_text()
    assert text.count("# Started at") == 2 and text.index("first") < text.index("second")
