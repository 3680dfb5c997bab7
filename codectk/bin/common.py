"""Shared helpers of the ``python -m codectk.bin.<step>`` entry points."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

from humanfriendly import format_timespan

from codectk.errors import CodectkError


def setup_logging(verbose: bool = False) -> None:
    """Log ``time file:line level: message`` to stderr (collected by run.pl logs)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser that shows the module docstring as its description."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``<what> took <duration>`` when the block ends."""
    start = time.time()
    yield
    logging.getLogger("codectk").info("%s took %s", what, format_timespan(time.time() - start))


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
