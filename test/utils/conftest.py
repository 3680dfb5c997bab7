"""Shared helpers for the tests of the Kaldi-convention tools in ``utils/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "utils"


@pytest.fixture
def utils_dir() -> Path:
    """The repository's ``utils/`` folder (the tools under test)."""
    return UTILS


@pytest.fixture
def run_tool(tmp_path):
    """Run a command in ``tmp_path``; ``utils/<name>`` may be given by its bare name.

    Returns a function ``run(*args, stdin=None, cwd=None)`` giving the
    ``subprocess.CompletedProcess`` (text mode, stdout and stderr captured). ``PYTHON``
    is set to the interpreter running the tests, for the wrappers around codectk.bin.
    """

    def run(*args, stdin: str | None = None, cwd: Path | None = None):
        cmd = [str(a) for a in args]
        if (UTILS / cmd[0]).is_file():
            cmd[0] = str(UTILS / cmd[0])
        env = dict(os.environ, PYTHON=sys.executable, LC_ALL="C")
        return subprocess.run(
            cmd,
            cwd=cwd or tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    return run
