"""Logging setup of every codectk entry point and worker process: one format,
``time (file:line) level: message`` on stderr, which run.pl / slurm.pl logs collect;
:func:`timed` logs how long a block took."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

from humanfriendly import format_timespan

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    """Log ``time (file:line) level: message`` to stderr, replacing any earlier setup.

    Args:
        verbose (bool): DEBUG messages too (default INFO and above).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=LOG_FORMAT,
        stream=sys.stderr,
        force=True,
    )


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``<what> took <duration>`` when the block ends."""
    start = time.time()
    yield
    logging.getLogger("codectk").info("%s took %s", what, format_timespan(time.time() - start))
