"""audiocraft 1.3.0's training modules, imported by path for the EnCodec parity tests.

audiocraft (the authors' training code for EnCodec) pins another torch, so it is never
installed: ``make parity`` downloads its sdist into ``tools/venv-compare/ref/`` and the
tests import single files from it (:func:`test.parity.refs.import_distribution`). Its
package ``__init__`` files import the whole toolkit (xformers, transformers, ...), so the
packages stay "hollow" and the few names a module imports from its parent package
(``from ...modules import NormConv2d``) are set on the hollow package here.

Each function skips the calling test outside ``tools/venv-compare``.
"""

from __future__ import annotations

import sys
import types

from test.parity import refs

VERSION = "audiocraft 1.3.0 (PyPI sdist)"


def _modules_package() -> types.ModuleType:
    """``audiocraft.modules`` (hollow) holding the names other files import from it."""
    refs.require_package("einops")
    conv = refs.import_distribution("audiocraft.modules.conv", hollow=("audiocraft.modules",))
    package = sys.modules["audiocraft.modules"]
    for name in ("NormConv2d", "pad_for_conv1d"):
        setattr(package, name, getattr(conv, name))
    return package


def balancer() -> types.ModuleType:
    """``audiocraft/losses/balancer.py`` (needs flashy)."""
    refs.require_package("flashy")
    return refs.import_distribution("audiocraft.losses.balancer", hollow=("audiocraft.losses",))


def specloss() -> types.ModuleType:
    """``audiocraft/losses/specloss.py`` (needs torchaudio's transforms)."""
    refs.require_package("torchaudio")
    _modules_package()
    return refs.import_distribution("audiocraft.losses.specloss", hollow=("audiocraft.losses",))


def adversarial_losses() -> types.ModuleType:
    """``audiocraft/adversarial/losses.py`` (needs flashy)."""
    refs.require_package("flashy")
    return refs.import_distribution(
        "audiocraft.adversarial.losses", hollow=("audiocraft.adversarial",)
    )


def msstftd() -> types.ModuleType:
    """``audiocraft/adversarial/discriminators/msstftd.py`` (needs torchaudio, einops)."""
    refs.require_package("torchaudio")
    _modules_package()
    return refs.import_distribution(
        "audiocraft.adversarial.discriminators.msstftd",
        hollow=("audiocraft.adversarial", "audiocraft.adversarial.discriminators"),
    )


def core_vq() -> types.ModuleType:
    """``audiocraft/quantization/core_vq.py`` (needs einops, flashy)."""
    refs.require_package("einops")
    refs.require_package("flashy")
    return refs.import_distribution(
        "audiocraft.quantization.core_vq", hollow=("audiocraft.quantization",)
    )


def quantizer() -> types.ModuleType:
    """``audiocraft/quantization/vq.py`` (``ResidualVectorQuantizer``, q_dropout)."""
    core_vq()
    return refs.import_distribution(
        "audiocraft.quantization.vq", hollow=("audiocraft.quantization",)
    )
