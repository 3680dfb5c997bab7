"""codectk: train, decode and score neural speech codecs.

Python API::

    import codectk
    codec = codectk.load_codec("egs/mini_librispeech/codec1/exp/codec_train_soundstream_tiny")
    codes = codec.encode(wav)          # wav (B, 1, T) -> codes (B, K, F)
    wav_hat = codec.decode(codes)      # codes (B, K, F) -> wav (B, 1, F * hop_length)
"""

from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text().strip()


def load_codec(path, checkpoint=None, device="cpu", fold_weight_norm=False):
    """Load a trained codec from an experiment folder or a packed archive.

    See :func:`codectk.inference.load_codec`.
    """
    from codectk.inference import load_codec as _load

    return _load(path, checkpoint=checkpoint, device=device, fold_weight_norm=fold_weight_norm)


def build_codec(config_path):
    """Build the untrained codec (generator only) that a training config describes.

    See :func:`codectk.inference.build_codec`.
    """
    from codectk.inference import build_codec as _build

    return _build(config_path)


__all__ = ["__version__", "build_codec", "load_codec"]
