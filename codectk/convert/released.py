"""The authors' released EnCodec and DAC models by name, and where to download them.

Nothing here downloads: a user fetches the file named by :attr:`Released.url` and
passes its path (``codectk.load_codec("encodec_24khz", weights=path)``, ``codectk
convert --name encodec_24khz --checkpoint path --out model.pt``). Each name maps to the
codectk config in the repository's ``conf/`` that holds the released architecture
(docs/pretrained.md has the table).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from codectk.config import TrainConfig, load_train_config
from codectk.convert.common import ConversionError, convert_checkpoint
from codectk.errors import check_choice

#: The repository's paper-size configs (``conf/`` next to the ``codectk`` package).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@dataclass(frozen=True)
class Released:
    """One released model.

    Attributes:
        family (str): the converter (:data:`codectk.convert.CONVERTERS`).
        config (str): file name under ``conf/``.
        overrides (tuple[str, ...]): config overrides, as on a command line.
        url (str): where the authors publish the weights.
        about (str): one line on the model.
    """

    family: str
    config: str
    overrides: tuple[str, ...]
    url: str
    about: str


RELEASED: dict[str, Released] = {
    "encodec_24khz": Released(
        "encodec",
        "encodec_24k_24kbps.yaml",
        (),
        "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th",
        "EnCodec 24 kHz mono, causal, 0.75-24 kbps (encodec 0.1.1's encodec_model_24khz)",
    ),
    "encodec_48khz": Released(
        "encodec",
        "encodec_48k_24kbps.yaml",
        ("--codec_conf.channels", "2"),
        "https://dl.fbaipublicfiles.com/encodec/v0/encodec_48khz-7e698e3e.th",
        "EnCodec 48 kHz stereo, non-causal, 1.5-24 kbps (encodec_model_48khz; codectk codes "
        "whole signals without the authors' 1 s segments and volume normalisation)",
    ),
    "dac_44khz": Released(
        "dac",
        "dac_44k_8kbps.yaml",
        (),
        "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth",
        "DAC 44.1 kHz, 9 codebooks, 0.86-7.75 kbps (descript-audio-codec 44khz 8kbps, 0.0.1)",
    ),
    "dac_24khz": Released(
        "dac",
        "dac_24k_24kbps.yaml",
        (),
        "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.4/weights_24khz.pth",
        "DAC 24 kHz, 32 codebooks, 0.75-24 kbps (descript-audio-codec 24khz, 0.0.4)",
    ),
    "dac_16khz": Released(
        "dac",
        "dac_16k_6kbps.yaml",
        (),
        "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.5/weights_16khz.pth",
        "DAC 16 kHz, 12 codebooks, 0.5-6 kbps (descript-audio-codec 16khz, 0.0.5)",
    ),
}


def released(name: str) -> Released:
    """The table entry of ``name``.

    Raises:
        ConversionError: an unknown name (listing the known ones).
    """
    check_choice("released model", name, sorted(RELEASED), ConversionError)
    return RELEASED[name]


def released_config(name: str, overrides: list[str] | None = None) -> TrainConfig:
    """The codectk config of released model ``name`` (plus further ``overrides``).

    Raises:
        ConversionError: an unknown name, or a codectk installation without the
            repository's ``conf/`` folder.
    """
    entry = released(name)
    path = CONF_DIR / entry.config
    if not path.is_file():
        raise ConversionError(
            f"{path}: not found; the released models' configs are in the codectk "
            "repository's conf/ folder (use a clone, or --family and --config)"
        )
    return load_train_config(path, [*entry.overrides, *(overrides or [])])


def load_released(name: str, weights: str | os.PathLike) -> nn.Module:
    """Build released model ``name`` and load the authors' weights file into it.

    Args:
        name (str): a key of :data:`RELEASED`.
        weights: the file downloaded from ``RELEASED[name].url``.

    Returns:
        nn.Module: the codec, in eval mode.

    Raises:
        ConversionError: an unknown name, a missing or unreadable file, or weights that
            do not fit (keys and shapes named).
    """
    if not Path(weights).is_file():
        raise ConversionError(
            f"{weights}: no such file; download {name}'s weights from {released(name).url}"
        )
    return convert_checkpoint(released(name).family, weights, released_config(name))
