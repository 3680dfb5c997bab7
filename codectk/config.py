"""Training configuration: YAML schema, overrides and the resolved config.

A training config names each part and its constructor arguments::

    codec: soundstream            # registry name
    codec_conf: {...}             # its constructor arguments
    discriminator: combined
    discriminator_conf: {...}
    loss: codec_gan
    loss_conf: {...}              # sample_rate is filled in from the codec
    optim: adam                   # generator optimizer (ESPnet's optim/optim2 naming)
    optim_conf: {lr: 0.0002, betas: [0.5, 0.9]}
    scheduler: exponentiallr
    scheduler_conf: {gamma: 0.999996}
    optim2: adam                  # discriminator optimizer
    optim2_conf: {...}
    scheduler2: exponentiallr
    scheduler2_conf: {...}
    batch_size: 8                 # ... trainer options, see TrainConfig

Unknown keys are errors at every level. Command-line overrides use dotted keys:
``--max_steps 20 --codec_conf.encoder.n_filters 16`` (values parsed as YAML).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from typeguard import TypeCheckError, check_type

from codectk.errors import ConfigError, check_choice
from codectk.io.fileio import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "DISCRIMINATOR_BATCHES",
    "DISCRIMINATOR_LOSS_GATES",
    "GAN_STEP_ORDERS",
    "ConfigError",
    "CONFIG_VERSION",
    "TrainConfig",
    "apply_overrides",
    "build_train_config",
    "load_train_config",
    "load_yaml",
    "save_config",
    "upgrade_config",
    "version_1_codec_keys",
]


# TrainConfig.gan_step_order values: order of the two updates in a GAN step
GAN_STEP_ORDERS = ("d_first", "g_first", "g_first_regenerate", "d_first_regenerate")
# TrainConfig.discriminator_loss_gate values
DISCRIMINATOR_LOSS_GATES = ("none", "generator_loss")
# TrainConfig.discriminator_batch values: turns that run real and fake in one call
DISCRIMINATOR_BATCHES = ("both", "d_turn", "none")
# TrainConfig.discriminator_memory_format values
MEMORY_FORMATS = ("contiguous", "channels_last")


# The layout of the config keys; a config (or a model file's) of an older version is
# rewritten by build_train_config (see upgrade_config).
CONFIG_VERSION = 2

# Version 1 -> 2: each loss's flat loss_conf keys moved into sections: "lambda_<term>" ->
# weights.<term>, and "<prefix><key>" -> <section>.<key> (an exact key: <section>.<key>).
_LOSS_SECTIONS_V2 = {
    "codec_gan": {"mel_": "mel", "stft_": "stft"},
    "dac": {"mel_": "mel"},
    "esc": {"mel_": "mel"},
    "encodec": {"freq_": "freq"},
    "funcodec": {"mel_": "mel", "power_spec_loss": "mel"},
    "hificodec": {"mel_": "mel"},
    "ladiffcodec_ae": {"mel_": "mel"},
}

# Version 1 -> 2: each codec's flat codec_conf keys moved into sections (the networks'
# and the quantizer's arguments): codec name -> {version-1 key: "section.key"}. A key
# not listed keeps its place.


def _into(section: str, *keys: str, **renamed: str) -> dict[str, str]:
    """Version-1 keys that moved into ``section`` under their own name (``keys``) or
    another (``renamed``: old key -> new key)."""
    moves = {k: f"{section}.{k}" for k in keys}
    return {**moves, **{old: f"{section}.{new}" for old, new in renamed.items()}}


_SEANET_KEYS = (  # the SEANet arguments, in version 1's order
    *("n_filters", "dimension", "ratios", "n_residual_layers", "dilation_base", "kernel_size"),
    *("residual_kernel_size", "last_kernel_size", "activation", "causal", "norm", "pad_mode"),
    *("causal_pad_mode", "lstm", "compress", "true_skip"),
)
_FREQCODEC_ONLY = ("conv_group_ratio", "tr_conv_group_ratio")  # its 2-D SEANet's
_ENCODEC_ONLY = ("dimension", "causal", "pad_mode", "causal_pad_mode")  # not FreqCodec's
_EMA_RVQ_KEYS = (  # the EMA residual VQ's arguments (its "decay" was "ema_decay")
    *("n_codebooks", "codebook_size", "codebook_dim", "kmeans_init", "kmeans_iters"),
    *("threshold_ema_dead_code", "detach_residual", "ema_init", "dead_code"),
)
_SEANET_RVQ_V2 = {
    **_into("encoder", *_SEANET_KEYS),
    **_into("decoder", decoder_last_kernel_size="last_kernel_size"),
    **_into("quantizer", *_EMA_RVQ_KEYS, ema_decay="decay"),
}
_AUDIODEC_ANALYSIS_V2 = {
    **_into("encoder", encode_channels="channels", enc_ratios="channel_ratios"),
    **_into("encoder", enc_strides="strides"),
    **_into("quantizer", "codebook_size", "kmeans_init", "threshold_ema_dead_code"),
    **_into("quantizer", "ema_init", "random_init", codebook_num="n_codebooks", ema_decay="decay"),
}
_CODEC_SECTIONS_V2: dict[str, dict[str, str]] = {
    "encodec": _SEANET_RVQ_V2,
    "soundstream": _SEANET_RVQ_V2,
    "freqcodec": {
        **_into("encoder", *(k for k in _SEANET_KEYS if k not in _ENCODEC_ONLY), *_FREQCODEC_ONLY),
        **_into("quantizer", *(k for k in _EMA_RVQ_KEYS if k != "detach_residual")),
        **_into("quantizer", ema_decay="decay"),
    },
    "continuous_ae": _into("encoder", *_SEANET_KEYS),
    "symad": {
        **_AUDIODEC_ANALYSIS_V2,
        **_into("decoder", decode_channels="channels", dec_ratios="channel_ratios"),
        **_into("decoder", dec_strides="strides"),
    },
    "audiodec": {
        **_AUDIODEC_ANALYSIS_V2,
        **_into("decoder", "upsample_scales", "resblock_kernel_sizes", "resblock_dilations"),
        **_into(
            "decoder", "groups", vocoder_channels="channels", vocoder_kernel_size="kernel_size"
        ),
    },
    "hificodec": {
        **_into("encoder", "n_filters", "upsample_rates", "upsample_kernel_sizes", "resblock"),
        **_into("encoder", "resblock_kernel_sizes", "resblock_dilation_sizes"),
        **_into("decoder", "upsample_initial_channel", "output_negative_slope"),
        **_into("quantizer", "n_groups", "n_codebooks_per_group", "codebook_size"),
        **_into("quantizer", "codebook_update", "kmeans_init", "kmeans_iters", ema_decay="decay"),
        **_into("quantizer", "threshold_ema_dead_code"),
    },
    "dac": {
        **_into("encoder", encoder_dim="dim", encoder_rates="rates", latent_dim="latent_dim"),
        **_into("decoder", decoder_dim="dim", decoder_rates="rates"),
        **_into("quantizer", "n_codebooks", "codebook_size", "codebook_dim"),
    },
    "esc": {
        **_into("encoder", "patch_size", "dims", "num_heads", "depth", "window_size", "mlp_ratio"),
        **_into("quantizer", "overlap", "groups", "codebook_size", "codebook_dims"),
    },
}


def version_1_codec_keys(codec: str) -> dict[str, str]:
    """Where version 2 keeps each moved ``codec_conf`` key of a version-1 config of
    ``codec``: {version-1 key: "section.key"} (empty for a codec whose keys did not move).
    """
    return dict(_CODEC_SECTIONS_V2.get(codec, {}))


# Codecs whose codec_conf holds other codecs' confs: codec -> ((key naming the inner
# codec, or None where it is fixed; its conf's key; the codec it defaults to), ...).
_INNER_CODEC_CONFS: dict[str, tuple[tuple[str | None, str, str], ...]] = {
    "ladiffcodec": (
        ("discrete_codec", "discrete_codec_conf", "soundstream"),
        (None, "ae_conf", "continuous_ae"),
    ),
}


def _loss_key_v2(loss: str, key: str) -> str | None:
    """Where version 2 keeps ``loss_conf.<key>`` of a version-1 config of ``loss``."""
    if key.startswith("lambda_"):
        return "weights." + key.removeprefix("lambda_")
    for prefix, section in _LOSS_SECTIONS_V2.get(loss, {}).items():
        if key == prefix or (prefix.endswith("_") and key.startswith(prefix)):
            return f"{section}.{key.removeprefix(prefix) or key}"
    return None


def _move_keys(
    conf: dict[str, Any], target: Callable[[str], str | None], where: str
) -> tuple[dict[str, Any], list[str]]:
    """``conf`` with each key ``k`` for which ``target(k)`` names a place ("name" or
    "section.name") moved there; the moves, as "k -> place".

    Raises:
        ConfigError: a key moved onto one already set.
    """
    new = {k: copy.deepcopy(v) for k, v in conf.items() if target(k) is None}
    moved = []
    for key, value in conf.items():
        place = target(key)
        if place is None:
            continue
        *section, name = place.split(".")
        node = new
        for part in section:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {key} clashes with {place}")
        if name in node:
            raise ConfigError(f"{where}: {key} clashes with {place}")
        node[name] = copy.deepcopy(value)
        moved.append(f"{key} -> {place}")
    return new, moved


def _upgrade_codec_conf_v2(codec: str, conf: dict[str, Any], where: str) -> tuple[dict, list]:
    """A version-1 ``codec_conf`` of ``codec`` in the version-2 layout, and the moves."""
    table = _CODEC_SECTIONS_V2.get(codec, {})
    new, moved = _move_keys(conf, table.get, f"{where}: codec_conf")
    for name_key, conf_key, default in _INNER_CODEC_CONFS.get(codec, ()):
        if isinstance(new.get(conf_key), dict):
            inner = default if name_key is None else new.get(name_key, default)
            new[conf_key], inner_moved = _upgrade_codec_conf_v2(
                inner, new[conf_key], f"{where}: codec_conf.{conf_key}"
            )
            moved += [f"{conf_key}.{m}" for m in inner_moved]
    return new, moved


def upgrade_config(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Rewrite a config of an older :data:`CONFIG_VERSION` (no ``config_version`` key:
    version 1) into the current layout; a current one is returned as it is.

    Version 2 put ``loss_conf`` (``weights`` and one section per spectral loss) and
    ``codec_conf`` (network and quantizer sections) in sections; the key maps are
    ``_LOSS_SECTIONS_V2`` and ``_CODEC_SECTIONS_V2``.

    Args:
        data (dict): the config mapping (not modified).
        where (str): the file, for messages.

    Returns:
        dict: the config with ``config_version`` = :data:`CONFIG_VERSION`.

    Raises:
        ConfigError: a version newer than this codectk's, or not an integer; a key that
            would be moved onto one already set.
    """
    version = data.get("config_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{where}: config_version={version!r} must be an integer >= 1")
    if version > CONFIG_VERSION:
        raise ConfigError(
            f"{where}: config_version {version} is newer than this codectk's "
            f"({CONFIG_VERSION}); upgrade codectk"
        )
    data = {**data, "config_version": CONFIG_VERSION}
    moves = []
    if version < 2 and isinstance(data.get("loss_conf"), dict):
        loss = data.get("loss", "codec_gan")
        data["loss_conf"], moved = _move_keys(
            data["loss_conf"], lambda k: _loss_key_v2(loss, k), f"{where}: loss_conf"
        )
        moves += [f"loss_conf.{m}" for m in moved]
    if version < 2 and isinstance(data.get("codec_conf"), dict) and "codec" in data:
        data["codec_conf"], moved = _upgrade_codec_conf_v2(data["codec"], data["codec_conf"], where)
        moves += [f"codec_conf.{m}" for m in moved]
    if moves:
        # a YAML file the user edits deserves a warning; a model file is read as it is
        log = logger.warning if str(where).endswith((".yaml", ".yml")) else logger.info
        log(
            "%s: keys of config version 1 read as version %d: %s",
            where,
            CONFIG_VERSION,
            ", ".join(moves),
        )
    return data


@dataclass
class TrainConfig:
    """All options of a training run (the top level of a training YAML).

    Attributes:
        codec, codec_conf: codec registry name and constructor arguments.
        discriminator, discriminator_conf: discriminator (None: no adversarial training).
        loss, loss_conf: generator/discriminator loss; its ``loss_conf`` has a ``weights``
            section (term -> weight) and one section per spectral loss
            (:mod:`codectk.losses.objective`).
        optim, optim_conf, scheduler, scheduler_conf: generator optimizer and LR schedule
            (``scheduler: none`` for a constant rate), stepped once per training step.
        optim2, optim2_conf, scheduler2, scheduler2_conf: the same for the discriminator.
        batch_size (int): examples per step.
        segment_duration (float): seconds of audio cropped at random per example.
        max_steps (int): training steps; 0 writes the untrained model (a baseline).
        valid_interval (int): validate and checkpoint every this many steps.
        log_interval (int): log and write TensorBoard scalars every this many steps.
        grad_clip (float): max global gradient norm (<= 0: no clipping) of the generator,
            and of the discriminator unless ``discriminator_grad_clip`` is set.
        discriminator_grad_clip (float | None): max global gradient norm of the
            discriminator (None: ``grad_clip``; <= 0: no clipping). DAC clips the
            generator at 1000 and the discriminator at 10.
        discriminator_start_step (int): adversarial losses start at this step.
        discriminator_update_prob (float): from then on, the discriminator is updated at a
            step with this probability (EnCodec: 2/3 at 24 kHz, 0.5 at 48 kHz); the draw
            depends only on (seed, step), so every rank and a resumed run agree. The
            generator's adversarial losses apply at every step.
        keep_nbest_models (int): snapshots kept and averaged by the best criterion.
        best_model_criterion (str): validation metric for selection (lower is better).
        valid_max_duration (float): seconds of each validation utterance used.
        valid_audio_examples (int): validation utterances logged to TensorBoard as audio.
        num_workers (int): DataLoader worker processes.
        seed (int): seed of model init, crops and quantizer dropout.
        nonfinite_policy (str): on a NaN/inf loss or gradient, ``stop`` (naming the step,
            the utterances and the last good checkpoint) or ``skip`` the batch with a
            counted warning. With fused optimizers (the default on CUDA) the update is
            skipped on the device and the step reported at the next logging step (the
            learning-rate schedulers still advance by that step).
        init_from (str | None): a finished experiment folder, model file or packed model
            whose weights initialise the codec before step 1 (chained experiments:
            AudioDec's vocoder, LaDiffCodec's phases); ``${exp:NAME}`` names a sibling
            experiment (:mod:`codectk.phase`). Ignored when resuming.
        init_modules (list[str]): parameter-name prefixes copied from ``init_from``
            (``encoder``, ``quantizer.layers.0``...); empty copies every parameter and
            buffer whose name and shape match. A prefix matching nothing is an error.
        init_map (dict[str, str]): rename prefixes of ``init_from``'s names before
            matching (``{"encoder": "codec.encoder"}``: its ``encoder.*`` fills our
            ``codec.encoder.*``).
        freeze_modules (list[str]): submodule names (``encoder``, ``quantizer``) held
            fixed from step ``freeze_from_step`` on: no gradients, no optimizer updates,
            eval mode (so EMA codebooks and batch statistics do not move either).
        freeze_from_step (int): first step of freezing (0: from the start).
        amp (str): mixed precision of the forward passes: ``none``, ``bf16`` or ``fp16``
            (with a gradient scaler). Losses, quantizers and validation stay in float32.
        accum_grad (int): split each step's batch into this many micro-batches whose
            gradients are accumulated: less memory, the same data and (up to float
            rounding) the same update. Under DDP each rank's share is split.
        max_epochs (float | None): stop after this many passes over the training audio
            (``steps = epochs * total training samples / (batch_size * segment)``);
            with ``max_steps`` too, whichever comes first.
        max_train_time (str | None): wall-clock budget of one invocation ("11h30m",
            "45m"): at the first step past it (under DDP: the first logging or validation
            step, where the ranks agree on it without a collective every step), validate,
            checkpoint and stop with an error that says to re-run stage 5 (for SLURM time
            limits).
        compile (bool): compile regions with ``torch.compile`` (opt-in; the first steps
            pay the compilation): the generator's residual units and blocks, each
            sub-discriminator and the spectral losses, each on its own
            (:mod:`codectk.train.regions`); the quantizer and validation stay eager.
        discriminator_batch (str): run real and fake audio through the discriminator in
            one call of twice the batch: in both turns (``both``), in the
            discriminator's turn only (``d_turn``, where the generator's turn would spend
            a backward pass on the real half), or never (``none``, two calls). Per
            example the outputs are those of two calls (up to float rounding); a
            discriminator with per-call state (spectral norm's power iteration, batch
            norm, dropout) always takes two calls.
        discriminator_memory_format (str): memory layout of the discriminator's 2-D
            convolution weights (MPD, MRD, MS-STFT): ``contiguous`` (NCHW) or
            ``channels_last`` (NHWC: cuDNN then runs its NHWC kernels without converting
            every layer's input and output, and so do the feature maps that follow). The
            values are those of the contiguous layout up to float rounding; the speed is
            the GPU's to say (``make bench`` suite ``train_gpu``, variant
            ``channels_last``).
        gan_step_order (str): the order of the two updates of a step that trains the
            discriminator (see :data:`GAN_STEP_ORDERS`); on other steps only the
            generator is updated, whatever the order.

            * ``d_first``: the discriminator on the detached output, then the generator's
              adversarial losses against the updated discriminator on that same output
              (HiFi-GAN, DAC ``scripts/train.py:238-274``, HiFi-Codec
              ``academicodec/models/hificodec/train.py:244-289``);
            * ``g_first``: the generator first, then the discriminator on the generator's
              output from before that update, detached (ESC
              ``scripts/trainer_adv.py:71-105``, LaDiffCodec ``srcs/train.py:136-149``);
            * ``g_first_regenerate``: the generator first, then the discriminator on an
              output recomputed without gradients by the updated generator, in training
              mode (AudioDec ``trainer/autoencoder.py:84-126``, ``trainer/vocoder.py:65-106``);
            * ``d_first_regenerate``: the discriminator on an output of its own generator
              forward (without gradients, in training mode: EMA codebooks update and
              quantizer dropout draws twice per step), then the generator's turn with a
              new forward against the updated discriminator (FunCodec: ``GANTrainer`` with
              its default ``generator_first: false``, ``funcodec/train/gan_trainer.py:172-181``,
              and ``models/codec_freq.py:586-600``).

            With ``accum_grad`` > 1 every turn accumulates over all micro-batches before its
            optimizer steps, except ``d_first``, which keeps its older behaviour (see
            :meth:`codectk.train.trainer.Trainer._train_step`).
        discriminator_loss_gate (str): ``none``, or ``generator_loss``: the discriminator
            loss is multiplied by [L_D > L_G], with L_G the generator objective of the
            generator turns since the last discriminator turn, summed, without the
            quantizer's commitment and codebook terms and without the model-internal
            losses (FunCodec ``models/codec_freq.py:538-542,637-646``; the same in
            ``codec_basic.py:565-569,644-650``). A gated step still runs the optimizer (with zero
            gradients Adam keeps moving the weights by its momentum), as FunCodec's.
        optim_reset_step (int): before this training step (1-based) the generator
            optimizer's state (Adam moments and step counts) is cleared, as if it were
            created anew; its learning rate stays the scheduler's. 0: never. ESC re-creates
            its generator optimizer once after pre-training, at its 0-based step
            ``pretraining_steps + 1`` (``scripts/trainer_adv.py:140-143``,
            ``trainer_no_adv.py:75-78``): our step ``pretrain_steps + 2``.

    Multi-phase recipes (:mod:`codectk.phase`):

    Attributes:
        phase_inputs (dict[str, str]): the earlier experiments, by role, that a
            preparation step builds this phase from (LaDiffCodec's phase 3:
            ``discrete_codec`` and ``autoencoder``, read by
            ``codectk.bin.ladiffcodec_prepare``, which writes the config that is
            trained, without them). Values are paths or ``${exp:NAME}`` references.
            Empty for every other config: a phase trained directly names its
            predecessor in ``init_from``.
    """

    codec: str
    codec_conf: dict = field(default_factory=dict)
    discriminator: str | None = None
    discriminator_conf: dict = field(default_factory=dict)
    loss: str = "codec_gan"
    loss_conf: dict = field(default_factory=dict)
    optim: str = "adam"
    optim_conf: dict = field(default_factory=dict)
    scheduler: str = "none"
    scheduler_conf: dict = field(default_factory=dict)
    optim2: str = "adam"
    optim2_conf: dict = field(default_factory=dict)
    scheduler2: str = "none"
    scheduler2_conf: dict = field(default_factory=dict)
    batch_size: int = 8
    segment_duration: float = 1.0
    max_steps: int = 1000
    valid_interval: int = 200
    log_interval: int = 20
    grad_clip: float = 10.0
    discriminator_grad_clip: float | None = None
    discriminator_start_step: int = 0
    discriminator_update_prob: float = 1.0
    keep_nbest_models: int = 3
    best_model_criterion: str = "mel_distance"
    valid_max_duration: float = 10.0
    valid_audio_examples: int = 2
    num_workers: int = 0
    seed: int = 0
    nonfinite_policy: str = "stop"
    init_from: str | None = None
    init_modules: list = field(default_factory=list)
    init_map: dict = field(default_factory=dict)
    freeze_modules: list = field(default_factory=list)
    freeze_from_step: int = 0
    amp: str = "none"
    accum_grad: int = 1
    max_epochs: float | None = None
    max_train_time: str | None = None
    compile: bool = False
    gan_step_order: str = "d_first"
    discriminator_loss_gate: str = "none"
    optim_reset_step: int = 0
    discriminator_batch: str = "both"
    discriminator_memory_format: str = "contiguous"
    # -- multi-phase recipes (codectk.phase) --
    phase_inputs: dict = field(default_factory=dict)
    config_version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = f.type if not isinstance(f.type, str) else eval(f.type)  # noqa: S307
            if hint is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
                continue
            try:
                check_type(value, hint)
            except TypeCheckError:
                raise ConfigError(f"{f.name}={value!r} must be of type {f.type}") from None
        if isinstance(self.discriminator_grad_clip, bool):
            raise ConfigError(
                f"discriminator_grad_clip={self.discriminator_grad_clip!r} must be a number or null"
            )
        if isinstance(self.discriminator_grad_clip, int):
            self.discriminator_grad_clip = float(self.discriminator_grad_clip)
        for name in ("batch_size", "valid_interval", "log_interval", "keep_nbest_models"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps={self.max_steps} must be >= 0")
        if self.optim_reset_step < 0:
            raise ConfigError(f"optim_reset_step={self.optim_reset_step} must be >= 0")
        choices = {
            "nonfinite_policy": ("stop", "skip"),
            "amp": ("none", "bf16", "fp16"),
            "gan_step_order": GAN_STEP_ORDERS,
            "discriminator_loss_gate": DISCRIMINATOR_LOSS_GATES,
            "discriminator_batch": DISCRIMINATOR_BATCHES,
            "discriminator_memory_format": MEMORY_FORMATS,
        }
        for name, valid in choices.items():
            check_choice(name, getattr(self, name), valid, ConfigError)
        if self.accum_grad < 1 or self.batch_size % self.accum_grad:
            raise ConfigError(
                f"accum_grad={self.accum_grad} must be >= 1 and divide batch_size={self.batch_size}"
            )
        if self.max_epochs is not None and self.max_epochs <= 0:
            raise ConfigError(f"max_epochs={self.max_epochs} must be > 0")
        if self.max_train_time is not None:
            from humanfriendly import InvalidTimespan, parse_timespan

            try:
                parse_timespan(self.max_train_time)
            except InvalidTimespan:
                raise ConfigError(
                    f"max_train_time {self.max_train_time!r}: not a duration like '11h30m'"
                ) from None
        if not 0.0 < self.discriminator_update_prob <= 1.0:
            raise ConfigError(
                f"discriminator_update_prob={self.discriminator_update_prob} must lie in (0, 1]"
            )
        if self.segment_duration <= 0:
            raise ConfigError(f"segment_duration={self.segment_duration} must be > 0 seconds")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override value {text!r} is not valid YAML: {exc}") from None


def apply_overrides(conf: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--key value`` / ``--a.b value`` / ``--key=value`` overrides to a config dict.

    Raises:
        ConfigError: a malformed override or a dotted path through a non-mapping.
    """
    conf = yaml.safe_load(yaml.safe_dump(conf, sort_keys=False))  # deep copy, order kept
    i = 0
    while i < len(overrides):
        arg = overrides[i]
        if not arg.startswith("--"):
            raise ConfigError(f"override {arg!r}: expected --key value")
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(overrides):
                raise ConfigError(f"override --{key} has no value")
            value = overrides[i + 1]
            i += 2
        node = conf
        parts = key.replace("-", "_").split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override --{key}: {p} is not a mapping")
        node[parts[-1]] = _parse_value(value)
    return conf


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader.

    Raises:
        ConfigError: missing file, YAML syntax error (with line) or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def build_train_config(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Validate a config mapping into a :class:`TrainConfig`.

    Raises:
        ConfigError: unknown top-level keys (listing the valid ones) or bad values.
    """
    data = upgrade_config(data, where)
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(valid)}")
    if "codec" not in data:
        raise ConfigError(f"{where}: 'codec' is required")
    try:
        return TrainConfig(**data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_train_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read, override and validate a training YAML."""
    return build_train_config(apply_overrides(load_yaml(path), overrides or []), where=str(path))


def load_config_with_overrides(
    path: str, overrides: list[str], source: str = "command line"
) -> TrainConfig:
    """Read a training YAML and apply ``--key value`` overrides; an error blames the
    file when the file alone is wrong and the overrides (and ``source``) when they are.

    Args:
        path (str): the YAML file.
        overrides (list[str]): ``--key value`` words.
        source (str): where the overrides come from, for messages (``--train_args``).

    Returns:
        TrainConfig: the validated config.

    Raises:
        ConfigError: a bad file or bad overrides, naming which.
    """
    data = load_yaml(path)
    config = build_train_config(data, where=str(path))
    if not overrides:
        return config
    try:
        return build_train_config(apply_overrides(data, overrides), where=f"{path}")
    except ConfigError as exc:
        text = str(exc).removeprefix(f"{path}: ")
        raise ConfigError(f"{' '.join(overrides)} ({source}): {text}") from None


def save_config(config: TrainConfig | dict, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically)."""
    data = config.to_dict() if isinstance(config, TrainConfig) else config
    with atomic_write(path) as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=None)
