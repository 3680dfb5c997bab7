"""Codec model families, registered by name in :data:`codectk.models.base.CODECS`."""

from codectk.models import (  # noqa: F401  (each module registers its codec by name)
    audiodec,
    dac,
    encodec,
    esc,
    freqcodec,
    hificodec,
    ladiffcodec,
    soundstream,
)
from codectk.models.base import CODECS, Codec, CodecOutput

__all__ = ["CODECS", "Codec", "CodecOutput"]
