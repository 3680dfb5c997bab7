"""utils/filter_scp.pl: keep or drop table lines by key."""

from __future__ import annotations

import pytest

SCP = "a 1 x\nb 2 y\nc 3 x\nd 4 z\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "in.scp").write_text(SCP)
    (tmp_path / "ids").write_text("c whatever\nb\n\nnot-there\n")


def test_include(run_tool, files):
    r = run_tool("filter_scp.pl", "ids", "in.scp")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b 2 y\nc 3 x\n"  # input order, not id-list order


def test_exclude(run_tool, files):
    r = run_tool("filter_scp.pl", "--exclude", "ids", "in.scp")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a 1 x\nd 4 z\n"


def test_field_option_and_stdin(tmp_path, run_tool, files):
    (tmp_path / "keys").write_text("x\n")
    r = run_tool("filter_scp.pl", "-f", "3", "keys", stdin=SCP)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a 1 x\nc 3 x\n"
    r = run_tool("filter_scp.pl", "--exclude", "-f", "3", "keys", "-", stdin=SCP)
    assert r.stdout == "b 2 y\nd 4 z\n"


def test_errors(run_tool, files):
    r = run_tool("filter_scp.pl", "-f", "4", "ids", "in.scp")
    assert r.returncode == 1
    assert "in.scp:1" in r.stderr
    assert run_tool("filter_scp.pl", "missing", "in.scp").returncode == 1
    assert run_tool("filter_scp.pl", "-f", "0", "ids", "in.scp").returncode == 2
    assert run_tool("filter_scp.pl").returncode == 2
