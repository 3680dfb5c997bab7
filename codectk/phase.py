"""Multi-phase recipes: a training config names the experiments it continues.

Some codecs train in phases, each an experiment of its own (AudioDec: symAD, then the
vocoder on its codes, or a denoising encoder; LaDiffCodec: a discrete codec and an
autoencoder, then the latent diffusion on both). A later phase's YAML names its
predecessor with a reference, in the key where the predecessor's part goes::

    init_from: ${exp:symAD_16k_tiny}                  # its weights
    codec_conf:
      stats: ${exp:symAD_16k_tiny}/code_stats.npy     # a file in its folder

``${exp:NAME}`` (in any string value, nested keys included) stands for the folder
``<expdir>/codec_NAME``: the experiment that codec.sh stage 5 trains with ``--tag NAME``,
which the phase drivers (egs/TEMPLATE/codec1/audiodec.sh, ladiffcodec.sh) give each
phase: the file name of its config. ``<expdir>`` is the parent of the run's output
folder (codec.sh's ``--expdir``), so the phases of a chain are sibling folders.

A codec whose config a preparation step completes (LaDiffCodec's phase 3, built by
``codectk.bin.ladiffcodec_prepare``) lists its predecessors by role in
``phase_inputs`` (:data:`PREPARED_INPUTS`)::

    phase_inputs:
      discrete_codec: ${exp:soundstream_16k_tiny}
      autoencoder: ${exp:ladiffcodec_ae_16k_tiny}

Any reference can be overridden like any key (``--init_from exp/other/model.pt``).
Errors name the config file, the key and the reference.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codectk.config import TrainConfig, build_train_config
from codectk.errors import ConfigError

__all__ = [
    "PREPARED_INPUTS",
    "Reference",
    "check_chain",
    "check_phase_inputs",
    "experiment_dir",
    "find_references",
    "resolve_references",
    "resolve_train_config",
]

_OPEN = "${"
_REF = re.compile(r"\$\{exp:([A-Za-z0-9][A-Za-z0-9_.+-]*)\}")
_SYNTAX = "${exp:<name>} (<name>: letters, digits and _ . + -; the tag of an earlier experiment)"

#: ``phase_inputs`` roles of the codecs that a preparation step builds, and that step.
PREPARED_INPUTS = {
    "ladiffcodec": (("discrete_codec", "autoencoder"), "codectk.bin.ladiffcodec_prepare"),
}


@dataclass(frozen=True)
class Reference:
    """One ``${exp:NAME}`` in a config.

    Attributes:
        key (str): dotted key of the value (``init_from``, ``codec_conf.stats``).
        value (str): the whole string value.
        name (str): the experiment name (its tag, the file name of its config).
    """

    key: str
    value: str
    name: str


def experiment_dir(expdir: str | os.PathLike, name: str) -> Path:
    """The folder of experiment ``name``: ``<expdir>/codec_<name>``."""
    return Path(expdir) / f"codec_{name}"


def _strings(node: Any, key: str = ""):
    """(dotted key, value) of every string in a nested mapping/list."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{key}[{i}]")
    elif isinstance(node, str):
        yield key, node


def find_references(data: dict, where: str) -> list[Reference]:
    """The references of a config mapping, in key order.

    Args:
        data (dict): the config (after overrides).
        where (str): the file, for messages.

    Returns:
        list[Reference]: one per ``${exp:NAME}`` occurrence.

    Raises:
        ConfigError: a ``${`` that does not open a well-formed reference.
    """
    refs = []
    for key, value in _strings(data):
        if _OPEN not in value:
            continue
        if _OPEN in _REF.sub("", value):
            raise ConfigError(f"{where}: {key}: {value!r} is not a reference; write {_SYNTAX}")
        refs.extend(Reference(key, value, m[1]) for m in _REF.finditer(value))
    return refs


def check_phase_inputs(data: dict, where: str, training: bool = False) -> None:
    """``phase_inputs`` holds exactly the roles its codec's preparation step reads.

    Args:
        data (dict): the config.
        where (str): the file, for messages.
        training (bool): the config is about to be trained: ``phase_inputs`` must be
            empty (the preparation step writes the config that is trained).

    Raises:
        ConfigError: roles for a codec without a preparation step, missing or unknown
            roles, a value that is not a string, or inputs left in a config to train.
    """
    inputs = data.get("phase_inputs") or {}
    codec = data.get("codec")
    if not inputs:
        return
    if codec not in PREPARED_INPUTS:
        raise ConfigError(
            f"{where}: phase_inputs: only codecs built by a preparation step take them "
            f"({sorted(PREPARED_INPUTS)}); a {codec} phase names its predecessor in "
            "init_from (e.g. init_from: ${exp:<name>})"
        )
    roles, step = PREPARED_INPUTS[codec]
    if set(inputs) != set(roles):
        raise ConfigError(
            f"{where}: phase_inputs: roles {sorted(inputs)}; a {codec} config needs "
            f"exactly {list(roles)}"
        )
    for role, value in inputs.items():
        if not isinstance(value, str):
            raise ConfigError(
                f"{where}: phase_inputs.{role}: {value!r} must be a path or {_SYNTAX}"
            )
    if training:
        raise ConfigError(
            f"{where}: phase_inputs are read by `python -m {step}`, which writes the "
            "config to train; train that one"
        )


def resolve_references(
    data: dict, expdir: str | os.PathLike, where: str, check: bool = True
) -> dict:
    """A copy of a config with each ``${exp:NAME}`` replaced by ``<expdir>/codec_NAME``.

    Args:
        data (dict): the config mapping (after overrides).
        expdir (str | PathLike): the folder of the experiments.
        where (str): the file, for messages.
        check (bool): every value holding a reference must then name an existing path.

    Returns:
        dict: the resolved mapping (``data`` is not changed).

    Raises:
        ConfigError: a malformed reference, or (``check``) a path that does not exist,
            saying whether the experiment is missing or only the file in it.
    """
    find_references(data, where)  # syntax first, naming the key

    def sub(value: str) -> str:
        return _REF.sub(lambda m: str(experiment_dir(expdir, m[1])), value)

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{key}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, str) or _OPEN not in node:
            return node
        path = sub(node)
        if check and not Path(path).exists():
            missing = [
                m[1] for m in _REF.finditer(node) if not experiment_dir(expdir, m[1]).is_dir()
            ]
            if missing:
                name = missing[0]
                raise ConfigError(
                    f"{where}: {key}: {node} is {path}, but there is no experiment "
                    f"{experiment_dir(expdir, name)}: train that phase first "
                    f"(./run.sh --stage 5 --stop_stage 5 --train_config conf/{name}.yaml "
                    f"--tag {name}) or point {key} elsewhere"
                )
            raise ConfigError(
                f"{where}: {key}: {node} is {path}, which does not exist (the experiment "
                "is there; the step of its phase that writes this file has not run)"
            )
        return path

    return walk(data, "")


def check_chain(phases: list[tuple[str, dict]], expdir: str | os.PathLike) -> list[list[Reference]]:
    """Each phase of a chain names only earlier phases or finished experiments.

    Args:
        phases (list[tuple[str, dict]]): (config file, config mapping after overrides)
            in training order; a phase's experiment name is its file name without
            ``.yaml`` (the phase drivers' ``--tag``).
        expdir (str | PathLike): the folder of the experiments.

    Returns:
        list[list[Reference]]: each phase's references.

    Raises:
        ConfigError: a malformed reference, bad ``phase_inputs``, or a reference to a
            name that is neither an earlier phase nor an existing experiment (naming
            the file, the key and the phases of the chain).
    """
    earlier: list[str] = []
    found = []
    for path, data in phases:
        refs = find_references(data, path)
        check_phase_inputs(data, path)
        for ref in refs:
            if ref.name not in earlier and not experiment_dir(expdir, ref.name).is_dir():
                before = ", ".join(earlier) or "none"
                raise ConfigError(
                    f"{path}: {ref.key}: {ref.value} names {ref.name}, which is neither an "
                    f"earlier phase of this chain (before it: {before}) nor an experiment "
                    f"in {expdir} ({experiment_dir(expdir, ref.name)} not found)"
                )
        found.append(refs)
        earlier.append(Path(path).name.removesuffix(".yaml"))
    return found


def resolve_train_config(config: TrainConfig, where: str, expdir: str | os.PathLike) -> TrainConfig:
    """A config ready to train: references resolved against ``expdir`` (each must
    exist) and no ``phase_inputs`` left.

    Args:
        config (TrainConfig): the config, overrides applied.
        where (str): its file, for messages.
        expdir (str | PathLike): the folder of the experiments (the output folder's parent).

    Returns:
        TrainConfig: the resolved config.

    Raises:
        ConfigError: a malformed or dangling reference, or phase inputs to prepare first.
    """
    data = config.to_dict()
    check_phase_inputs(data, where, training=True)
    return build_train_config(resolve_references(data, expdir, where), where=where)
