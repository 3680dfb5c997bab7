"""codectk's error classes (every one names the file, and line, where there is one), and
:func:`check_choice`, the one check of a value against a fixed set of choices.

The ``python -m codectk.bin.<step>`` entry points print these as one ``ERROR:`` line
and exit 1, without a Python traceback; anything else is a bug and keeps its traceback.
"""

from collections.abc import Collection


class CodectkError(Exception):
    """Base class of the errors codectk raises on bad input or a failed run."""


class ConfigError(CodectkError, ValueError):
    """A bad configuration or option; the message names the file and key."""


def check_choice(
    name: str, value: object, choices: Collection[object], error: type[Exception] = ValueError
) -> None:
    """Check that ``value`` is one of ``choices``.

    The message is ``"<name> <value!r> not supported; choose one of [<choices>]"``, the
    choices in their iteration order (pass a sorted list for a set). A value that cannot
    be looked up (an unhashable list against a dict's keys) is not supported either.

    Args:
        name (str): what the value is, as the user wrote it (an option or config key).
        value (object): the value to check.
        choices (Collection[object]): the allowed values (a dict: its keys).
        error (type[Exception]): the exception class to raise (e.g. :class:`ConfigError`).

    Raises:
        Exception: an ``error`` (ValueError by default) naming ``value`` and the choices,
            when ``value`` is not among them.
    """
    try:
        ok = value in choices
    except TypeError:  # unhashable value, dict or set choices
        ok = False
    if not ok:
        raise error(f"{name} {value!r} not supported; choose one of {list(choices)}")
