"""codectk: train, decode and score neural speech codecs.

Python API::

    import codectk, soundfile as sf
    codec = codectk.load_codec("egs/mini_librispeech/codec1/exp/codec_soundstream_16k_tiny")
    wav, sr = sf.read("speech.flac")                    # (T,) float64, or (T, C)
    wav = codectk.convert_audio(wav.T, sr, codec.sample_rate, codec.channels)  # (C, T)
    codes = codec.encode(wav[None], bandwidth=1.6)      # (B, C, T) -> codes (B, K, F)
    wav_hat = codec.decode(codes, length=wav.shape[-1])  # (B, C, T)
    data = codec.compress(wav)                          # bytes of a .ctk file
    wav_hat = codec.decompress(data)                    # (C, T)

``encode`` / ``decode`` also take numpy arrays, float64 and integer PCM, and run long
audio in windows with bounded memory (:mod:`codectk.models.api`). The authors' released
EnCodec and DAC weights load by name: ``codectk.load_codec("encodec_24khz",
weights="encodec_24khz-d7cc33bc.th")`` (docs/pretrained.md).
"""

from codectk.version import __version__


def load_codec(path, checkpoint=None, device="cpu", fold_weight_norm=False, weights=None):
    """Load a trained codec from an experiment folder, a model file, a packed archive or,
    with ``weights``, a released model's name.

    See :func:`codectk.inference.load_codec`.
    """
    from codectk.inference import load_codec as _load

    return _load(
        path,
        checkpoint=checkpoint,
        device=device,
        fold_weight_norm=fold_weight_norm,
        weights=weights,
    )


def build_codec(config_path):
    """Build the untrained codec (generator only) that a training config describes.

    See :func:`codectk.inference.build_codec`.
    """
    from codectk.inference import build_codec as _build

    return _build(config_path)


def convert_audio(wav, sr, target_sr, target_channels):
    """Resample and re-channel a waveform for a codec (as EnCodec's ``convert_audio``).

    See :func:`codectk.io.audio.convert_audio`.
    """
    from codectk.io.audio import convert_audio as _convert

    return _convert(wav, sr, target_sr, target_channels)


__all__ = ["__version__", "build_codec", "convert_audio", "load_codec"]
