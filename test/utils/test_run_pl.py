"""utils/run.pl: Kaldi's job-array launcher, run locally."""

from __future__ import annotations

import re

HEADER_DATE = re.compile(r"^# Started at \w{3} \w{3} [ 0-9]\d \d\d:\d\d:\d\d .*\d{4}$")
ACCOUNTING = re.compile(r"^# Accounting: time=\d+ threads=(\d+)$")
ENDED = re.compile(r"^# Ended \(code (\d+)\) at .*\d{4}$")


def read_log(path) -> tuple[str, list[str], int, int]:
    """Split a run.pl log into (command, body lines, threads, exit code)."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# "), lines
    assert HEADER_DATE.match(lines[1]), lines[1]
    accounting = ACCOUNTING.match(lines[-2])
    ended = ENDED.match(lines[-1])
    assert accounting and ended, lines[-2:]
    return lines[0][2:], lines[2:-2], int(accounting[1]), int(ended[1])


def test_job_array_writes_one_log_per_job(tmp_path, run_tool):
    r = run_tool("run.pl", "JOB=1:3", "exp/log/step.JOB.log", "echo", "hello", "JOB")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    logs = sorted((tmp_path / "exp" / "log").iterdir())
    assert [p.name for p in logs] == ["step.1.log", "step.2.log", "step.3.log"]
    for job, log in enumerate(logs, 1):
        cmd, body, threads, code = read_log(log)
        assert cmd == f"echo hello {job}"
        assert body == [f"hello {job}"]
        assert (threads, code) == (1, 0)


def test_failed_job_exits_1_and_names_its_log(tmp_path, run_tool):
    r = run_tool("run.pl", "JOB=1:3", "log/f.JOB.log", "bash", "-c", "[ JOB -ne 2 ] || exit 3")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "run.pl: 1 / 3 failed, log is in log/f.2.log"
    assert read_log(tmp_path / "log" / "f.2.log")[3] == 3
    assert read_log(tmp_path / "log" / "f.1.log")[3] == 0


def test_failed_log_tail_reaches_the_console(tmp_path, run_tool):
    """The error is on stderr, not only in the log: the first failed log's last 20
    lines (without run.pl's closing lines)."""
    script = "seq 1 30; echo 'ERROR: data/x/wav.scp:3: no such file' >&2; exit 1"
    r = run_tool("run.pl", "JOB=1:2", "log/f.JOB.log", "bash", "-c", script)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[1] == "run.pl: the last lines of log/f.1.log:"
    assert lines[2:] == [f"  {i}" for i in range(12, 31)] + [
        "  ERROR: data/x/wav.scp:3: no such file"
    ]


def test_append_log_keeps_earlier_runs(tmp_path, run_tool):
    for word in ("first", "second"):
        r = run_tool("run.pl", "--append-log", "true", "log/train.log", "echo", word)
        assert r.returncode == 0, r.stderr
    text = (tmp_path / "log" / "train.log").read_text()
    assert text.count("# Started at") == 2 and text.index("first") < text.index("second")
    r = run_tool("run.pl", "log/train.log", "echo", "third")
    assert "first" not in (tmp_path / "log" / "train.log").read_text()  # default: afresh
    assert run_tool("run.pl", "--append-log", "maybe", "l.log", "true").returncode == 2


def test_all_failed_logs_are_listed(run_tool):
    r = run_tool("run.pl", "JOB=1:3", "log/f.JOB.log", "false")
    assert r.returncode == 1
    assert "3 / 3 failed, log is in log/f.1.log log/f.2.log log/f.3.log" in r.stderr


def test_stderr_goes_to_the_log(tmp_path, run_tool):
    r = run_tool("run.pl", "x.log", "bash", "-c", "echo out; echo err >&2")
    assert r.returncode == 0, r.stderr
    assert read_log(tmp_path / "x.log")[1] == ["out", "err"]


def test_single_job_forms(tmp_path, run_tool):
    assert run_tool("run.pl", "one.log", "echo", "JOB").returncode == 0
    assert read_log(tmp_path / "one.log")[1] == ["JOB"]  # no JOB= range: left as it is
    assert run_tool("run.pl", "JOB=3", "j.JOB.log", "echo", "JOB").returncode == 0
    assert read_log(tmp_path / "j.3.log")[1] == ["3"]
    r = run_tool("run.pl", "TASK=2:3", "t.TASK.log", "echo", "task=TASK")
    assert r.returncode == 0, r.stderr
    assert read_log(tmp_path / "t.2.log")[1] == ["task=2"]
    assert read_log(tmp_path / "t.3.log")[1] == ["task=3"]
    assert not (tmp_path / "t.1.log").exists()


def test_arguments_with_spaces_and_quotes_survive(tmp_path, run_tool):
    args = ["a b", "it's", 'say "hi"', "", "back\\slash", "  two  spaces "]
    r = run_tool("run.pl", "q.log", "printf", "[%s]\\n", *args)
    assert r.returncode == 0, r.stderr
    assert read_log(tmp_path / "q.log")[1] == [f"[{a}]" for a in args]


def test_words_without_spaces_or_quotes_keep_shell_meaning(tmp_path, run_tool):
    # Kaldi convention: a pipe passed as its own argument is a pipe in the job.
    r = run_tool("run.pl", "JOB=1:2", "p.JOB.log", "echo", "abc", "JOB", "|", "tr", "a-c", "A-C")
    assert r.returncode == 0, r.stderr
    assert read_log(tmp_path / "p.2.log")[1] == ["ABC 2"]
    assert run_tool("run.pl", "e.log", "echo", "$((1+2))", ">", "out.txt").returncode == 0
    assert (tmp_path / "out.txt").read_text() == "3\n"
    assert read_log(tmp_path / "e.log")[1] == []


def test_cluster_options_are_accepted(tmp_path, run_tool):
    r = run_tool(
        "run.pl", "--mem", "4G", "--gpu", "1", "--time=1:00:00", "--config", "conf/queue.conf",
        "--num-threads", "2", "--max_jobs_run", "2", "JOB=1:2", "o.JOB.log", "true",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert read_log(tmp_path / "o.1.log")[2] == 2


def timed_jobs(run_tool, tmp_path, max_jobs: int) -> list[tuple[int, int]]:
    """Run 3 jobs that each record their start and end time; return the sorted spans."""
    snippet = "date +%s%N > ts.JOB; sleep 0.3; date +%s%N >> ts.JOB"
    cmd = ["--max-jobs-run", str(max_jobs), "JOB=1:3", "log/s.JOB.log", "bash", "-c", snippet]
    r = run_tool("run.pl", *cmd)
    assert r.returncode == 0, r.stderr
    spans = []
    for job in (1, 2, 3):
        start, end = (int(t) for t in (tmp_path / f"ts.{job}").read_text().split())
        spans.append((start, end))
    return sorted(spans)


def test_max_jobs_run_1_serialises(tmp_path, run_tool):
    spans = timed_jobs(run_tool, tmp_path, 1)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, spans


def test_jobs_overlap_when_allowed(tmp_path, run_tool):
    spans = timed_jobs(run_tool, tmp_path, 3)
    assert spans[1][0] < spans[0][1] and spans[2][0] < spans[1][1], spans


def test_usage_errors_exit_2(run_tool):
    assert run_tool("run.pl").returncode == 2
    assert run_tool("run.pl", "JOB=1:2", "log/x.JOB.log").returncode == 2  # no command
    r = run_tool("run.pl", "JOB=1:2", "same.log", "true")
    assert r.returncode == 2
    assert "same.log" in r.stderr
    assert run_tool("run.pl", "JOB=3:1", "x.JOB.log", "true").returncode == 2
    assert run_tool("run.pl", "--max-jobs-run", "0", "x.log", "true").returncode == 2
    assert run_tool("run.pl", "--mem").returncode == 2
