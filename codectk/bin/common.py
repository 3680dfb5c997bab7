"""Shared helpers of the ``python -m codectk.bin.<step>`` entry points."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from codectk.errors import CodectkError
from codectk.log import setup_logging
from codectk.version import __version__

if TYPE_CHECKING:
    import torch

_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?: <[^>]*>)?`")  # :func:`x`, :mod:`~a.b`
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(doc: str | None) -> str | None:
    """A module docstring as terminal text: reStructuredText's ``literal`` quotes, role
    markup (``:func:`name```) and literal-block markers (``Usage::``) removed.

    Args:
        doc (str | None): the docstring.

    Returns:
        str | None: the text, None for None.
    """
    if doc is None:
        return None
    text = _ROLE.sub(lambda m: m[1].rsplit(".", 1)[-1] if m[0].count("~") else m[1], doc)
    text = _LITERAL.sub(r"\1", text)
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.M)  # "Usage::" -> "Usage:"
    return re.sub(r"^::$\n?", "", text, flags=re.M).strip()


def version() -> str:
    """``codectk <version>`` as ``--version`` prints it."""
    return f"codectk {__version__}"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser that shows the module docstring (as plain text) as its
    description and answers ``--version``."""
    p = argparse.ArgumentParser(
        description=plain_text(doc), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=version())
    return p


def str2bool(value: str) -> bool:
    """Parse ``true``/``false`` (Kaldi/ESPnet style) for argparse."""
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def run(main: Callable[[list[str] | None], int | None]) -> int:
    """Run an entry point's ``main``; a :class:`~codectk.errors.CodectkError` becomes one
    ``ERROR:`` log line naming the file and exit status 1 (no traceback)."""
    try:
        return int(main(None) or 0)
    except CodectkError as exc:
        if not logging.getLogger().handlers:
            setup_logging()
        logging.getLogger("codectk").error("%s", exc)
        return 1


# --engine and --precision of the streaming entry points (stream, stream_latency)
ENGINES = ("module", "compiled")
DEPRECATED_ENGINES = {"fast": "module"}  # removed engine -> the one that replaces it


def resolve_engine(engine: str) -> str:
    """The engine for ``--engine`` (a removed one maps to its replacement, with a warning).

    Raises:
        CodectkError: an unknown engine.
    """
    if engine in DEPRECATED_ENGINES:
        new = DEPRECATED_ENGINES[engine]
        logging.getLogger("codectk.stream").warning(
            "--engine %s was removed (one streaming path, issue 20): running --engine %s, "
            "same output",
            engine,
            new,
        )
        return new
    if engine not in ENGINES:
        raise CodectkError(f"--engine {engine!r} not supported; choose one of {list(ENGINES)}")
    return engine


def precision_dtype(precision: str) -> torch.dtype:
    """The streaming dtype for ``--precision`` (fp32 or bf16).

    Raises:
        CodectkError: an unknown precision.
    """
    from codectk.inference import PRECISIONS

    if precision not in PRECISIONS:
        raise CodectkError(
            f"--precision {precision!r} not supported; choose one of {list(PRECISIONS)}"
        )
    return PRECISIONS[precision]
