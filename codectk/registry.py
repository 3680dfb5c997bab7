"""Name -> class registries used by configs (``codec: soundstream`` + ``codec_conf``).

Each building-block module registers its classes with a decorator::

    CODECS = Registry("codec")

    @CODECS.register("soundstream")
    class SoundStream(Codec): ...

``Registry.build(name, conf)`` checks ``conf`` against the class constructor:
an unknown name or an unknown key raises ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from typeguard import TypeCheckError, check_type

from codectk.errors import ConfigError


class Registry:
    """A named table of constructors.

    Args:
        kind (str): what is registered ("codec", "discriminator", ...), used in messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator registering ``cls`` under ``name``.

        Raises:
            RuntimeError: if ``name`` is already registered.
        """

        def wrap(cls: type) -> type:
            if name in self._table:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._table[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        return sorted(self._table)

    def get(self, name: str) -> Callable[..., Any]:
        """Return the class registered as ``name``.

        Raises:
            ConfigError (a ValueError): naming the unknown value and the valid ones.
        """
        if name not in self._table:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {self.names()}")
        return self._table[name]

    def build(self, name: str, conf: Mapping[str, Any] | None = None) -> Any:
        """Instantiate ``name`` with keyword arguments ``conf`` after checking them.

        Raises:
            ValueError: unknown name, unknown key, or a value of the wrong type.
        """
        return build_section(self.get(name), conf, where=f"{self.kind}_conf ({name})")


def build_section(
    fn: Callable[..., Any],
    conf: Mapping[str, Any] | None,
    where: str,
    defaults: Mapping[str, Any] | None = None,
    **fixed: Any,
) -> Any:
    """``fn(**fixed, **defaults, **conf)`` after checking ``conf``: one section of a
    config (e.g. ``loss_conf.mel``, ``codec_conf.quantizer``) built by the class or
    function it configures.

    Args:
        fn: the class or function the section configures.
        conf (Mapping | None): the section's keys (None: all defaults).
        where (str): the section's place in the config, for messages.
        defaults (Mapping | None): the family's values, which ``conf`` replaces.
        **fixed: arguments the caller sets (e.g. ``sample_rate``), not for the config.

    Raises:
        ConfigError (a ValueError): a key that is not an argument of ``fn``, one the
            caller sets, or a value of the wrong type; whatever ``fn`` raises.
    """
    conf = {**(defaults or {}), **(conf or {})}
    clash = sorted(set(conf) & set(fixed))
    if clash:
        raise ConfigError(f"{where}: {clash} are set by codectk, not by the config")
    check_kwargs(fn, conf, where=where)
    return fn(**fixed, **conf)


def check_kwargs(fn: Callable[..., Any], conf: Mapping[str, Any], where: str) -> None:
    """Check that ``conf`` names only parameters of ``fn`` with values of the annotated types.

    Raises:
        ValueError: for an unknown key (listing the valid keys) or a badly typed value.
    """
    try:  # evaluated annotations (a preset class's __signature__ carries its own)
        sig, typed = inspect.signature(fn, eval_str=True), True
    except Exception:  # annotations that cannot be evaluated are not checked
        sig, typed = inspect.signature(fn), False
    params = {
        n: p
        for n, p in sig.parameters.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = sorted(set(conf) - set(params))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(params)}")
    hints = {n: p.annotation for n, p in params.items() if typed and p.annotation is not p.empty}
    for key, value in conf.items():
        if key in hints:
            hint = hints[key]
            if hint is float and isinstance(value, int) and not isinstance(value, bool):
                continue  # YAML writes 1 for 1.0
            try:
                check_type(value, hint)
            except TypeCheckError as exc:
                raise ConfigError(
                    f"{where}: {key}={value!r} is not a valid {hint}: {exc}"
                ) from None


def merge_sections(*confs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Constructor arguments laid over each other, later ones winning; a section (a
    mapping-valued argument, e.g. ``quantizer``) is merged key by key, so a preset or a
    config that sets ``quantizer: {n_codebooks: 4}`` keeps the section's other values.

    Returns:
        dict[str, Any]: a fresh dict (values deep-copied).
    """
    out: dict[str, Any] = {}
    for conf in confs:
        for key, value in (conf or {}).items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return copy.deepcopy(out)


def preset(
    cls: Callable[..., Any],
    where: str,
    base: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A constructor preset that states only what differs.

    The keyword arguments of ``cls`` are its defaults (or ``base``, another preset),
    updated by ``changes`` (what this preset sets) and then by ``overrides`` (the
    caller's), both checked against ``cls``'s signature and annotations; sections are
    merged key by key (:func:`merge_sections`).

    Args:
        cls: the class (or function) the preset configures.
        where (str): the preset's name, for messages.
        base (Mapping | None): the preset this one starts from (None: ``cls``'s defaults).
        overrides (Mapping | None): the caller's replacements, applied last.
        **changes: this preset's values.

    Returns:
        dict[str, Any]: every keyword argument of ``cls`` that has a default or is set
        (a fresh dict, deep-copied).

    Raises:
        ConfigError: a key that is not an argument of ``cls``, or a badly typed value.
    """
    if base is None:
        base = {
            n: p.default
            for n, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
    check_kwargs(cls, changes, where=where)
    check_kwargs(cls, overrides or {}, where=where)
    return merge_sections(base, changes, overrides)


def define_preset(
    cls: Callable[..., Any],
    name: str,
    summary: str,
    base: Callable[[], Mapping[str, Any]] | None = None,
    **changes: Any,
) -> Callable[..., dict[str, Any]]:
    """A named preset function, ``name(**overrides) -> dict``, for a module to export
    (e.g. ``encodec_tiny_conf``): :func:`preset` of ``cls`` from ``base()`` with
    ``changes``, and a docstring made of ``summary`` and the arguments every preset has.

    Args:
        cls: the class the preset configures (its module becomes the function's).
        name (str): the function's name.
        summary (str): what the preset is (its docstring's first paragraphs).
        base (Callable | None): the preset this one starts from (None: ``cls``'s
            defaults).
        **changes: this preset's values, checked now against ``cls``'s signature.

    Returns:
        Callable[..., dict[str, Any]]: the preset function.

    Raises:
        ConfigError: a change that is not an argument of ``cls`` or is badly typed.
    """
    check_kwargs(cls, changes, where=name)

    def make(**overrides: Any) -> dict[str, Any]:
        return preset(
            cls, name, base=None if base is None else base(), overrides=overrides, **changes
        )

    make.__name__ = make.__qualname__ = name
    make.__module__ = cls.__module__
    make.__doc__ = f"""{summary.strip()}

    Args:
        **overrides: replacement values for any :class:`{cls.__name__}` argument.

    Returns:
        dict[str, Any]: keyword arguments of :class:`{cls.__name__}` (a fresh dict).

    Raises:
        ConfigError: an override that is not a :class:`{cls.__name__}` argument or has the
            wrong type.
    """
    return make


def with_overrides(cls: type, config: Any | None, overrides: Mapping[str, Any]) -> Any:
    """A network config: ``config`` (a ``cls`` dataclass) with ``overrides`` replacing its
    fields, or ``cls(**overrides)`` when ``config`` is None.

    Raises:
        TypeError: an unknown field; whatever ``cls`` raises for the values.
    """
    if config is None:
        return cls(**overrides)
    return dataclasses.replace(config, **overrides) if overrides else config


def preset_signature(cls: Callable[..., Any], defaults: Mapping[str, Any]) -> inspect.Signature:
    """``cls``'s signature with other defaults: the ``__signature__`` of a preset class
    whose ``__init__(**conf)`` calls ``cls`` with ``{**defaults, **conf}``, so that
    :func:`check_kwargs`, :func:`preset` and ``help()`` see its real arguments.

    Raises:
        ValueError: a default that is not an argument of ``cls``.
    """
    sig = inspect.signature(cls, eval_str=True)
    unknown = sorted(set(defaults) - set(sig.parameters))
    if unknown:
        raise ValueError(f"{unknown} are not arguments of {cls.__name__}")
    params = [
        p.replace(default=defaults[n]) if n in defaults else p for n, p in sig.parameters.items()
    ]
    return sig.replace(parameters=params)
