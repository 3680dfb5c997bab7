"""The import contract (.importlinter): modules of codectk import only from layers below
their own, lazy (function-level) imports included; ``make lint`` runs the same check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the codectk package under ``root`` (its own .importlinter)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


def test_imports_point_down_the_layers():
    proc = _lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def test_a_lazy_upward_import_breaks_the_contract(tmp_path: Path):
    """A function-level import of a higher layer, and a new module missing from the
    contract, are both reported."""
    shutil.copy(REPO / ".importlinter", tmp_path)
    shutil.copytree(
        REPO / "codectk", tmp_path / "codectk", ignore=shutil.ignore_patterns("__pycache__")
    )
    with open(tmp_path / "codectk" / "io" / "fileio.py", "a") as f:
        f.write(
            "\n\ndef _upward():\n    from codectk.inference import load_codec\n\n    return load_codec\n"
        )
    (tmp_path / "codectk" / "unplaced.py").write_text("X = 1\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "codectk.io is not allowed to import codectk.inference" in proc.stdout
    assert "- codectk.io.fileio -> codectk.inference" in proc.stdout
    assert "- codectk.unplaced" in proc.stdout
