"""Where the parity tests find the authors' code, and how they import it.

Three sources, none of them copied into codectk:

* installed packages of ``tools/venv-compare`` (``dac``, ``encodec``, ``flashy``):
  :func:`require_package` skips a test outside that environment;
* PyPI distributions downloaded with ``pip download --no-deps`` into
  ``tools/venv-compare/ref/`` (audiocraft 1.3.0, funcodec 0.2.0): they pin another torch,
  so they are never installed; :func:`import_from` imports single files by path, with
  "hollow" parent packages whose ``__init__`` (which would pull in the whole toolkit) is
  not run;
* checkouts of code not on PyPI, named by environment variables (:data:`CHECKOUTS`):
  :func:`checkout` skips a test when the variable is unset, saying how to get the code,
  and reports the commit the checkout is at (docs/parity.md records the commits checked).

``make parity`` builds the environment and runs ``test/parity`` and ``test/convert`` in it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REF_ROOT = REPO / "tools" / "venv-compare" / "ref"

# distribution -> folder under REF_ROOT holding its top-level package
DISTRIBUTIONS = {
    "audiocraft": "audiocraft-1.3.0",
    "funcodec": "funcodec-0.2.0",
}

# environment variable -> (repository, what it holds)
CHECKOUTS = {
    "CODECTK_REF_AUDIODEC": ("facebookresearch/AudioDec", "AudioDec (CC BY-NC 4.0)"),
    "CODECTK_REF_ESC": ("yzGuu830/efficient-speech-codec", "ESC"),
    "CODECTK_REF_ACADEMICODEC": ("yangdongchao/AcademiCodec", "HiFi-Codec (AcademiCodec)"),
    "CODECTK_REF_LADIFFCODEC": ("haiciyang/LaDiffCodec", "LaDiffCodec"),
}

NOT_IN_COMPARE_ENV = (
    "needs tools/venv-compare (the authors' packages, never installed into tools/venv): "
    "run `make parity`"
)


def require_package(name: str) -> types.ModuleType:
    """Import an installed reference package or skip (outside tools/venv-compare)."""
    return pytest.importorskip(name, reason=f"{name} not installed: {NOT_IN_COMPARE_ENV}")


def _hollow(name: str, path: Path) -> None:
    """Register package ``name`` at ``path`` without running its ``__init__``."""
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__package__ = name
    sys.modules[name] = module


def import_from(
    root: Path, dotted: str, hollow: tuple[str, ...] = (), alias: str | None = None
) -> types.ModuleType:
    """Import module ``dotted`` from the source tree ``root`` by path.

    Args:
        root: folder holding the top-level package of ``dotted``.
        dotted: module name, e.g. ``"audiocraft.losses.balancer"``.
        hollow: packages (dotted names under ``root``) registered empty, so that their
            ``__init__`` does not run; the top-level package is always hollow. A module
            under a hollow package still runs its own imports.
        alias: the name the top-level package gets in ``sys.modules`` (default: its own);
            use one when an installed package has the same name (LaDiffCodec ships its
            own ``encodec``).

    Returns:
        the imported module.

    Raises:
        FileNotFoundError: ``dotted`` is not a file under ``root``.
    """
    top = dotted.split(".")[0]
    mapped = alias or top
    packages = [top, *hollow]
    for pkg in packages:
        _hollow(mapped + pkg[len(top) :], root.joinpath(*pkg.split(".")))
    name = mapped + dotted[len(top) :]
    rel = Path(*dotted.split("."))
    if not (root / rel).with_suffix(".py").is_file() and not (root / rel / "__init__.py").is_file():
        raise FileNotFoundError(f"{dotted}: no such module under {root}")
    return importlib.import_module(name)


def distribution(name: str) -> Path:
    """Root of an unpacked reference distribution (skips when it is not there)."""
    path = REF_ROOT / DISTRIBUTIONS[name]
    if not path.is_dir():
        pytest.skip(f"{path} missing: {NOT_IN_COMPARE_ENV}")
    return path


def import_distribution(dotted: str, hollow: tuple[str, ...] = ()) -> types.ModuleType:
    """:func:`import_from` on the downloaded distribution of ``dotted``'s top package."""
    return import_from(distribution(dotted.split(".")[0]), dotted, hollow)


def commit_of(path: Path) -> str:
    """The git commit of a checkout (``.commit`` file for an exported tree), or "unknown"."""
    marker = path / ".commit"
    if marker.is_file():
        return marker.read_text().strip()
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def checkout(variable: str) -> Path:
    """The local checkout named by ``variable`` (one of :data:`CHECKOUTS`), or skip.

    The skip reason names the variable and the repository; the commit the test ran
    against is printed (``pytest -s``) so it can be recorded in docs/parity.md.
    """
    repo, what = CHECKOUTS[variable]
    value = os.environ.get(variable)
    if not value:
        pytest.skip(
            f"{what} is not on PyPI: set {variable} to a checkout of "
            f"https://github.com/{repo} (opt-in; CI does not have it)"
        )
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{variable}={value}: not a directory")
    print(f"{what}: {path} at commit {commit_of(path)}")
    return path
