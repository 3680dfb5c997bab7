"""utils/parse_options.sh: Kaldi-style options for scripts that source it."""

from __future__ import annotations

import pytest

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
nj=4             # number of jobs
use_gpu=false    # true or false
out_dir=exp      # where to write
help_message="Usage: demo.sh [options] <in> <out>"
. {utils}/parse_options.sh
echo "nj=${{nj}} use_gpu=${{use_gpu}} out_dir=${{out_dir}}"
for a in "$@"; do echo "arg=$a"; done
echo "cmdline=${{script_cmdline}}"
"""


@pytest.fixture
def demo(tmp_path, run_tool, utils_dir):
    path = tmp_path / "demo.sh"
    path.write_text(SCRIPT.format(utils=utils_dir))
    path.chmod(0o755)
    return lambda *args: run_tool(path, *args)


def values(stdout: str) -> str:
    return stdout.splitlines()[0]


def positional(stdout: str) -> list[str]:
    return [line[4:] for line in stdout.splitlines() if line.startswith("arg=")]


def test_dash_and_underscore_forms(demo):
    r = demo("--nj", "8", "--use-gpu", "true", "--out_dir", "my dir", "a", "b c")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=8 use_gpu=true out_dir=my dir"
    assert positional(r.stdout) == ["a", "b c"]


def test_equals_form(demo):
    r = demo("--out-dir=x=y", "--nj=2")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=2 use_gpu=false out_dir=x=y"


def test_defaults_and_cmdline_kept(demo):
    r = demo("--nj", "3", "a b")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=3 use_gpu=false out_dir=exp"
    assert r.stdout.splitlines()[-1].endswith("demo.sh --nj 3 a\\ b")


def test_stops_at_first_positional(demo):
    r = demo("in", "--nj", "3")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=4 use_gpu=false out_dir=exp"
    assert positional(r.stdout) == ["in", "--nj", "3"]


def test_double_dash_ends_options(demo):
    r = demo("--nj", "5", "--", "--use-gpu", "x")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=5 use_gpu=false out_dir=exp"
    assert positional(r.stdout) == ["--use-gpu", "x"]


def test_bool_option_rejects_other_values(demo):
    r = demo("--use-gpu", "yes", "a")
    assert r.returncode == 2
    assert "--use-gpu" in r.stderr and "true or false" in r.stderr and "yes" in r.stderr
    assert r.stdout == ""


def test_unknown_option_exits_2_and_names_it(demo):
    r = demo("--n-jobs", "3", "a")
    assert r.returncode == 2
    assert "--n-jobs" in r.stderr and "n_jobs" in r.stderr
    assert r.stdout == ""


def test_helper_variables_are_not_options(demo):
    assert demo("--_po_name", "x").returncode == 2


def test_option_without_value_exits_2(demo):
    r = demo("--nj")
    assert r.returncode == 2
    assert "--nj needs a value" in r.stderr


def test_config_file_applies_before_command_line(tmp_path, demo):
    (tmp_path / "my.conf").write_text("# comment\nnj=7\nout_dir=from_conf\n")
    r = demo("--nj", "9", "--config", "my.conf", "a")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == "nj=9 use_gpu=false out_dir=from_conf"
    assert positional(r.stdout) == ["a"]
    r = demo("--config=my.conf")
    assert values(r.stdout) == "nj=7 use_gpu=false out_dir=from_conf"


def test_missing_config_file_is_an_error(demo):
    r = demo("--config", "nope.conf", "a")
    assert r.returncode == 2
    assert "nope.conf" in r.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_help_message(demo, flag):
    r = demo("--nj", "2", flag)
    assert r.returncode == 0
    assert r.stdout == "Usage: demo.sh [options] <in> <out>\n"


def test_running_it_directly_is_a_usage_error(run_tool, utils_dir):
    r = run_tool("bash", utils_dir / "parse_options.sh", "--nj", "2")
    assert r.returncode == 2
    assert "source it" in r.stderr
