"""The ``codectk`` command itself: ``--version``, help texts in plain words."""

from __future__ import annotations

import subprocess
import sys

import pytest

import codectk
from codectk.bin import cli
from codectk.bin.common import plain_text


def codectk_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codectk.bin.cli", *args], capture_output=True, text=True
    )


def test_version():
    for flag in ("--version", "-V"):
        proc = codectk_cmd(flag)
        assert proc.returncode == 0 and proc.stdout == f"codectk {codectk.__version__}\n"
    proc = codectk_cmd("train", "--version")
    assert proc.returncode == 0 and proc.stdout == f"codectk {codectk.__version__}\n"


@pytest.mark.parametrize("step", ["encode", "train", "codec_inference", "convert", "pack"])
def test_help_has_no_restructuredtext(step):
    proc = codectk_cmd(step, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "``" not in proc.stdout and "::" not in proc.stdout and ":func:" not in proc.stdout
    assert "usage:" in proc.stdout


def test_top_level_help(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "codectk convert" in out and "``" not in out


def test_plain_text():
    doc = "See :func:`codectk.x.y` and :mod:`~codectk.batching`, ``--n 2``.\n\nUsage::\n\n    a\n"
    assert plain_text(doc) == "See codectk.x.y and batching, --n 2.\n\nUsage:\n\n    a"
