"""Shared helpers of the ``python -m codectk.bin.<step>`` entry points."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from codectk.errors import CodectkError, check_choice
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


MODEL_HELP = "experiment folder, model file or packed .zip"


def add_model_args(p: argparse.ArgumentParser, model_help: str = MODEL_HELP) -> None:
    """``--model`` (required) and ``--model_file``: the codec that
    ``load_codec(args.model, args.model_file, ...)`` loads."""
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--model_file", default=None, help="model file inside the experiment folder")


def add_num_threads_arg(p: argparse.ArgumentParser, default: int = 1) -> None:
    """``--num_threads``: torch's CPU threads (0: torch's default), see
    :func:`set_num_threads`."""
    p.add_argument(
        "--num_threads", type=int, default=default, help="torch CPU threads (0: torch default)"
    )


def add_device_args(p: argparse.ArgumentParser, num_threads: int = 1) -> None:
    """``--device`` (torch device, default cpu) and ``--num_threads`` (default
    ``num_threads``, see :func:`add_num_threads_arg`)."""
    p.add_argument("--device", default="cpu", help="torch device")
    add_num_threads_arg(p, num_threads)


def set_num_threads(num_threads: int) -> None:
    """``torch.set_num_threads(num_threads)`` for ``--num_threads`` > 0; 0 keeps torch's
    default."""
    if num_threads > 0:
        import torch

        torch.set_num_threads(num_threads)


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    """``--precision`` of the batch entry points (codec_inference, ctk): fp32 or bf16,
    checked by argparse (see :data:`codectk.inference.PRECISIONS`)."""
    from codectk.inference import PRECISIONS

    p.add_argument(
        "--precision",
        choices=sorted(PRECISIONS),
        default="fp32",
        help="encoder/decoder arithmetic: fp32 (default) or bf16 (faster, lossy)",
    )


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


def add_streaming_args(p: argparse.ArgumentParser) -> None:
    """``--chunk_ms``, ``--engine``, ``--precision`` and ``--autotune`` of the streaming
    entry points (stream, stream_latency); ``--engine`` and ``--precision`` are checked
    after parsing, by :func:`resolve_engine` and :func:`precision_dtype`."""
    p.add_argument("--chunk_ms", type=float, default=12.5, help="chunk duration (ms)")
    p.add_argument("--engine", default="module", help="module (default) or compiled")
    p.add_argument("--precision", default="fp32", help="encoder/decoder arithmetic: fp32 or bf16")
    p.add_argument(
        "--autotune", type=str2bool, default=True, help="compiled engine: autotune its GEMMs"
    )


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
    check_choice("--engine", engine, ENGINES, CodectkError)
    return engine


def precision_dtype(precision: str) -> torch.dtype:
    """The streaming dtype for ``--precision`` (fp32 or bf16).

    Raises:
        CodectkError: an unknown precision.
    """
    from codectk.inference import PRECISIONS

    check_choice("--precision", precision, PRECISIONS, CodectkError)
    return PRECISIONS[precision]
