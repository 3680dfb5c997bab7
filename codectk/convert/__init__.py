"""Import the authors' released generator weights into codectk's models.

``python -m codectk.bin.convert_checkpoint --family encodec|dac ...`` (see there) loads a
state-dict file the user downloaded, maps its keys onto the codec that a codectk config
builds (:mod:`codectk.convert.common`), and writes a codectk model file that
``codectk.load_codec`` and the recipe's decoding and scoring stages read.

Converters are registered by family name in :data:`CONVERTERS`.
"""

from codectk.registry import Registry

CONVERTERS = Registry("converter")

from codectk.convert.common import (  # noqa: E402
    ConversionError,
    canonical_key,
    convert_checkpoint,
    key_map,
    map_state_dict,
)
from codectk.convert.dac import DACConverter  # noqa: E402
from codectk.convert.encodec import EnCodecConverter  # noqa: E402

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "DACConverter",
    "EnCodecConverter",
    "canonical_key",
    "convert_checkpoint",
    "key_map",
    "map_state_dict",
]
