"""Logging setup of every codectk entry point and worker process: one format,
``time (file:line) level: message`` on stderr, which run.pl / slurm.pl logs collect."""

from __future__ import annotations

import logging
import sys

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
