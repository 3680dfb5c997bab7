"""Codec model families, registered by name in :data:`codectk.models.base.CODECS`."""

from codectk.models import soundstream  # noqa: F401  (registers "soundstream")
from codectk.models.base import CODECS, Codec, CodecOutput

__all__ = ["CODECS", "Codec", "CodecOutput"]
