"""codectk's error classes. Every one names the file (and line, where there is one).

The ``python -m codectk.bin.<step>`` entry points print these as one ``ERROR:`` line
and exit 1, without a Python traceback; anything else is a bug and keeps its traceback.
"""


class CodectkError(Exception):
    """Base class of the errors codectk raises on bad input or a failed run."""


class ConfigError(CodectkError, ValueError):
    """A bad configuration or option; the message names the file and key."""
