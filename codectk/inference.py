"""Load trained codecs for inference (experiment folders and packed archives)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from codectk.config import ConfigError, build_train_config, load_train_config
from codectk.errors import check_choice
from codectk.io.modelfile import CheckpointError, read_model_file
from codectk.models import CODECS, Codec
from codectk.nn.conv import remove_weight_norm_

#: Codecs whose config is completed by a preparation step, with the keys it fills in
#: and what to do instead of building the bare config.
PREPARED_CONFIGS = {
    "ladiffcodec": (
        ("discrete_codec_conf", "ae_conf"),
        "a LaDiffCodec phase-3 config gets its discrete codec and autoencoder from "
        "`python -m codectk.bin.ladiffcodec_prepare` (step 4 of run_ladiffcodec.sh); build "
        "the config it writes (exp/ladiffcodec_prep_<tag>/config.yaml) or load a trained "
        "phase-3 experiment with codectk.load_codec",
    ),
}


def build_codec(config_path: str | os.PathLike) -> Codec:
    """Build the untrained codec (generator only) that a training config describes.

    The codec is in training mode with trainable parameters, as the trainer builds it;
    run inference under ``torch.inference_mode()`` (or :func:`prepare_for_inference`).

    Raises:
        codectk.config.ConfigError: bad config, unknown codec or key, a config that a
            preparation step must complete first, or values the codec refuses (the
            message names the file).
    """
    config = load_train_config(config_path)
    if config.codec in PREPARED_CONFIGS:
        keys, advice = PREPARED_CONFIGS[config.codec]
        missing = [k for k in keys if not config.codec_conf.get(k)]
        if missing:
            raise ConfigError(f"{config_path}: codec_conf has no {missing}: {advice}")
    try:
        return CODECS.build(config.codec, config.codec_conf)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{config_path}: cannot build the {config.codec} codec: {exc}") from None


def _codec_from_model_file(
    obj: dict, where: str, device: str, fold_weight_norm: bool = False
) -> Codec:
    config = build_train_config(obj["config"], where=where)
    codec = CODECS.build(config.codec, config.codec_conf)
    try:
        codec.load_state_dict(obj["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{where}: weights do not fit the {config.codec} config: {exc}"
        ) from None
    if fold_weight_norm:
        remove_weight_norm_(codec)
    return codec.to(device).eval().requires_grad_(False)


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def prepare_for_inference(
    codec: Codec, fold_weight_norm: bool = True, compile: bool = False, precision: str = "fp32"
) -> Codec:
    """Make a codec ready for fast inference, in place: eval mode, no parameter gradients,
    weight norm folded (:func:`codectk.nn.conv.remove_weight_norm_`) and, opt-in,
    ``torch.compile`` of the encoder and decoder.

    Outputs stay those of the unprepared codec up to float rounding. The fast layer paths
    (convolutions padded inside the kernel, polyphase transposed convolutions, in-place
    snake) are taken whenever gradients are off (``torch.inference_mode`` /
    ``torch.no_grad``), prepared or not.

    Args:
        codec (Codec): the codec.
        fold_weight_norm (bool): fold weight norm (the codec can no longer be trained as
            before).
        compile (bool): wrap ``encoder.forward`` and ``decoder.forward`` in
            ``torch.compile(dynamic=True)`` (the first call of each input shape compiles;
            needs a C++ compiler on the CPU).
        precision (str): ``fp32`` (default: outputs equal to the unprepared codec's) or
            ``bf16``: encoder and decoder in bfloat16, the quantizer (a float32 island,
            :mod:`codectk.quantization.base`) in float32
            (:meth:`codectk.models.base.Codec.set_inference_dtype`, the one mechanism;
            streaming uses the same), up to 2x faster on
            CPUs with AVX-512 BF16 / AMX and on GPUs; lossy: a model-dependent waveform
            error (25 to 45 dB SNR measured) and code flips near codebook ties.

    Returns:
        Codec: ``codec`` itself.

    Raises:
        ValueError: ``compile`` for a codec without ``encoder`` and ``decoder`` modules;
            an unknown ``precision`` or one the codec does not support.
    """
    check_choice("precision", precision, PRECISIONS)
    if fold_weight_norm:
        remove_weight_norm_(codec)
    codec.eval().requires_grad_(False)
    if precision != "fp32":
        codec.set_inference_dtype(PRECISIONS[precision])
    if compile:
        parts = [getattr(codec, n, None) for n in ("encoder", "decoder")]
        if not all(isinstance(m, torch.nn.Module) for m in parts):
            raise ValueError(f"{type(codec).__name__} has no encoder/decoder modules to compile")
        for module in parts:
            module.forward = torch.compile(module.forward, dynamic=True)
    return codec


def load_codec(
    path: str | os.PathLike,
    checkpoint: str | None = None,
    device: str = "cpu",
    fold_weight_norm: bool = False,
    weights: str | os.PathLike | None = None,
) -> Codec:
    """Load a trained codec, in eval mode.

    Args:
        path: an experiment folder (``exp/codec_<tag>``), a model file (``*.pt``), a
            packed archive (``*.zip`` from stage 8), or with ``weights`` the name of a
            released model (:data:`codectk.convert.released.RELEASED`:
            ``encodec_24khz``, ``encodec_48khz``, ``dac_44khz``, ``dac_24khz``,
            ``dac_16khz``).
        checkpoint (str | None): model file name inside an experiment folder (default
            ``valid.mel_distance.ave.pt``, the averaged n-best model).
        device (str): torch device.
        fold_weight_norm (bool): fold every weight-norm parametrisation into a plain
            weight (:func:`codectk.nn.conv.remove_weight_norm_`): same outputs, faster
            inference, but the codec can no longer be trained as before.
        weights: the authors' weights file of released model ``path``, downloaded by
            the user from the address docs/pretrained.md gives (nothing is downloaded).

    Returns:
        Codec: in eval mode with parameters that do not require gradients, so that
        ``encode(wav (B,C,T)) -> codes (B,K,F)`` and ``decode`` build no autograd graph
        (:mod:`codectk.models.api` lists the inputs they take).

    Raises:
        CheckpointError: missing/foreign/unsafe file or weights that do not fit.
        ConversionError: an unknown released name, or released weights that do not fit.
    """
    from codectk.convert.released import RELEASED, load_released

    if weights is not None:
        codec = load_released(str(path), weights)
    elif str(path) in RELEASED and not Path(path).exists():
        raise CheckpointError(
            f"{path} is a released model: give weights=<the file from "
            f"{RELEASED[str(path)].url}> (docs/pretrained.md)"
        )
    else:
        obj, where = read_model_file(path, checkpoint)
        return _codec_from_model_file(obj, where, device, fold_weight_norm)
    if fold_weight_norm:
        remove_weight_norm_(codec)
    return codec.to(device).eval().requires_grad_(False)
