"""SEANet convolutional encoder and decoder, as used by SoundStream and EnCodec.

Architecture (Tagliasacchi et al., "SEANet: A Multi-modal Speech Enhancement Network",
Interspeech 2020; Zeghidour et al., "SoundStream", TASLP 2021, §III-A/B and Fig. 2;
Défossez et al., "EnCodec", 2022, §3.1):

* Encoder: Conv(k=``kernel_size``, C) -> for each stride S (``reversed(ratios)``):
  [``n_residual_layers`` residual units with dilations ``dilation_base ** j``,
  act, Conv(k=2S, stride S) doubling the channels] -> [LSTM] -> act ->
  Conv(k=``last_kernel_size``, D).
* Decoder mirrors it: Conv(k=``kernel_size``, 2^len(ratios) * C) -> [LSTM] -> for each
  stride S (``ratios``): [act, ConvTranspose(k=2S, stride S) halving the channels,
  residual units] -> act -> Conv(k=``last_kernel_size``, channels).
* Residual unit: x + [act, Conv(k=``residual_kernel_size``, dilation d, N -> N / compress),
  act, Conv(k=1, N / compress -> N)](x), with an identity skip (``true_skip``) or a 1x1
  conv skip.

SoundStream's settings are C = 32, strides (2, 4, 5, 8), three residual units with
dilations 1, 3, 9 and k = 7, ``compress`` = 1, identity skips, ELU, causal convolutions and
no LSTM; EnCodec's are one residual unit with k = 3, ``compress`` = 2, 1x1 skips and a
two-layer LSTM, weight norm at 24 kHz and (non-causal) time-wise group norm at 48 kHz
(``norm``). ``ratios`` is given in decoder order (as EnCodec); ``hop_length`` is their
product. Causal SEANets stream with no code of their own: their convolutions and LSTM
carry the state (:mod:`codectk.nn.streaming`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.nn.conv import SConv1d, SConvTranspose1d
from codectk.nn.lstm import SLSTM
from codectk.registry import build_section, with_overrides

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
_DEFAULT_RATIOS = (8, 5, 4, 2)
# Convolution normalisations (EnCodec's ``norm``): SConv1d / SConvTranspose1d flags.
_NORMS: dict[str, dict[str, bool]] = {
    "weight_norm": {"weight_norm": True, "group_norm": False},
    "time_group_norm": {"weight_norm": False, "group_norm": True},
    "none": {"weight_norm": False, "group_norm": False},
}


def make_activation(name: str) -> nn.Module:
    """Build an activation module by (case-insensitive) name.

    Args:
        name (str): one of "elu", "gelu", "leaky_relu" (slope 0.2), "relu", "silu", "tanh".

    Returns:
        nn.Module: a new activation module.

    Raises:
        ValueError: naming the unknown activation and the valid ones.
    """
    key = name.lower()
    check_choice("activation", key, _ACTIVATIONS)
    return _ACTIVATIONS[key]()


def norm_flags(norm: str, causal: bool) -> dict[str, bool]:
    """``weight_norm`` / ``group_norm`` flags of the convolutions for a SEANet ``norm``.

    Args:
        norm (str): "weight_norm", "time_group_norm" (GroupNorm(1, C) after each conv,
            EnCodec's 48 kHz model) or "none".
        causal (bool): whether the convolutions are causal.

    Returns:
        dict[str, bool]: keyword arguments of :class:`SConv1d` / :class:`SConvTranspose1d`.

    Raises:
        ValueError: for an unknown ``norm``, or "time_group_norm" with causal convolutions
            (it normalises over the whole sequence, i.e. reads the future).
    """
    check_choice("norm", norm, _NORMS)
    if causal and norm == "time_group_norm":
        raise ValueError("norm 'time_group_norm' is not causal; use it with causal=False")
    return dict(_NORMS[norm])


class SEANetResnetBlock(nn.Module):
    """Residual unit: x + conv1x1(act(conv_k,d(act(x)))) (SoundStream Fig. 2, "ResidualUnit").

    Args:
        dim (int): channels N.
        kernel_size (int): kernel of the dilated convolution.
        dilation (int): dilation of that convolution.
        activation (str): activation name (see :func:`make_activation`).
        causal (bool): causal convolutions.
        pad_mode (str): padding mode of non-causal convolutions.
        compress (int): hidden channels are ``dim // compress``.
        true_skip (bool): identity skip; otherwise a 1x1 convolution.
        norm (str): convolution normalisation (see :func:`norm_flags`).
        causal_pad_mode (str): left padding of causal convolutions (see
            :class:`~codectk.nn.conv.SConv1d`).
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 3,
        dilation: int = 1,
        activation: str = "elu",
        causal: bool = False,
        pad_mode: str = "reflect",
        compress: int = 2,
        true_skip: bool = True,
        norm: str = "weight_norm",
        causal_pad_mode: str = "constant",
    ):
        super().__init__()
        hidden = dim // compress
        conv = dict(causal=causal, pad_mode=pad_mode, causal_pad_mode=causal_pad_mode)
        conv.update(norm_flags(norm, causal))
        self.block = nn.Sequential(
            make_activation(activation),
            SConv1d(dim, hidden, kernel_size, dilation=dilation, **conv),
            make_activation(activation),
            SConv1d(hidden, dim, 1, **conv),
        )
        self.shortcut: nn.Module = nn.Identity() if true_skip else SConv1d(dim, dim, 1, **conv)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit.

        Args:
            x (Tensor): (B, N, F).

        Returns:
            Tensor: (B, N, F).
        """
        return self.shortcut(x) + self.block(x)


@dataclass
class SEANetConfig:
    """The settings SEANet's encoder and decoder share, passed whole to both.

    Args:
        channels (int): audio channels (1 for mono).
        dimension (int): latent dimension D.
        n_filters (int): base channels C (doubled at each downsampling; the decoder's
            first block has 2^len(ratios) * C).
        ratios (Sequence[int] | None): strides in DECODER order (the encoder applies them
            reversed); their product is the hop length.
        n_residual_layers (int): residual units per block, dilations ``dilation_base ** j``.
        dilation_base (int): dilation growth.
        kernel_size (int): kernel of the first convolution.
        residual_kernel_size (int): kernel of the residual units' dilated convolutions.
        last_kernel_size (int): kernel of the encoder's projection to D and of the
            decoder's output convolution.
        activation (str): activation name (see :func:`make_activation`).
        causal (bool): causal convolutions (streamable; SoundStream); the decoder's
            transposed convolutions then trim on the right.
        pad_mode (str): padding mode of non-causal convolutions.
        causal_pad_mode (str): left padding of causal convolutions ("constant": zeros;
            "reflect" as the authors' EnCodec).
        norm (str): convolution normalisation (see :func:`norm_flags`).
        lstm (int): LSTM layers at the bottleneck (0: none): before the encoder's final
            projection, after the decoder's first convolution.
        compress (int): channel reduction inside residual units.
        true_skip (bool): identity skips in residual units (else 1x1 convolutions).
        trim_right_ratio (float): share of a causal transposed convolution's surplus
            trimmed on the right (decoder).

    Raises:
        ValueError: ``channels`` < 1, bad ``ratios``, an unknown activation or norm, or a
            norm that is not causal with ``causal``.
    """

    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    ratios: Sequence[int] | None = _DEFAULT_RATIOS
    n_residual_layers: int = 1
    dilation_base: int = 2
    kernel_size: int = 7
    residual_kernel_size: int = 3
    last_kernel_size: int = 7
    activation: str = "elu"
    causal: bool = False
    pad_mode: str = "reflect"
    causal_pad_mode: str = "constant"
    norm: str = "weight_norm"
    lstm: int = 2
    compress: int = 2
    true_skip: bool = False
    trim_right_ratio: float = 1.0

    def __post_init__(self):
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        ratios = list(_DEFAULT_RATIOS if self.ratios is None else self.ratios)
        if not ratios or any(int(r) != r or r < 1 for r in ratios):
            raise ValueError(f"ratios must be a non-empty list of positive ints, got {ratios}")
        self.ratios = [int(r) for r in ratios]
        make_activation(self.activation)
        norm_flags(self.norm, self.causal)

    @property
    def hop_length(self) -> int:
        """Samples per latent frame: the product of ``ratios``."""
        return math.prod(self.ratios)

    def conv_options(self) -> dict[str, Any]:
        """Keyword arguments of every :class:`SConv1d` of the network."""
        return dict(
            causal=self.causal, pad_mode=self.pad_mode, causal_pad_mode=self.causal_pad_mode
        )

    def residual_unit(self, dim: int, j: int) -> SEANetResnetBlock:
        """The ``j``-th residual unit of a block with ``dim`` channels."""
        return SEANetResnetBlock(
            dim,
            self.residual_kernel_size,
            self.dilation_base**j,
            self.activation,
            compress=self.compress,
            true_skip=self.true_skip,
            norm=self.norm,
            **self.conv_options(),
        )


def seanet_sections(
    channels: int,
    encoder: Mapping[str, Any] | None,
    decoder: Mapping[str, Any] | None,
    encoder_defaults: Mapping[str, Any],
    decoder_defaults: Mapping[str, Any] | None = None,
    where: str = "codec_conf",
) -> tuple[SEANetConfig, SEANetConfig]:
    """The encoder's and the decoder's :class:`SEANetConfig` from a codec's ``encoder``
    and ``decoder`` config sections. ``encoder`` is the network's one config (every field
    but ``channels``, which the codec sets); the decoder's is the same with the
    ``decoder`` keys replacing its fields (its own differences, e.g. SoundStream's
    ``last_kernel_size``; a null value keeps the encoder's).

    Args:
        channels (int): audio channels (the codec's top-level ``channels``).
        encoder (Mapping | None): the ``encoder`` section, over ``encoder_defaults``.
        decoder (Mapping | None): the ``decoder`` section, over ``decoder_defaults``.
        encoder_defaults (Mapping): the family's ``encoder`` section.
        decoder_defaults (Mapping | None): the family's ``decoder`` section.
        where (str): the sections' place in the config, for messages.

    Returns:
        tuple[SEANetConfig, SEANetConfig]: the encoder's and the decoder's.

    Raises:
        ConfigError (a ValueError): an unknown key, ``channels`` in a section, or a badly
            typed value, naming ``<where>.encoder`` or ``<where>.decoder``.
        ValueError: a bad setting (see :class:`SEANetConfig`).
    """
    enc = {**encoder_defaults, **(encoder or {})}
    dec = {**(decoder_defaults or {}), **(decoder or {})}
    dec = {k: v for k, v in dec.items() if v is not None}
    enc_config = build_section(SEANetConfig, enc, f"{where}.encoder", channels=channels)
    dec_config = build_section(
        SEANetConfig, dec, f"{where}.decoder", defaults=enc, channels=channels
    )
    return enc_config, dec_config


class _SEANet(nn.Module):
    """What SEANet's encoder and decoder share: the config, the facts read from it
    (``ratios``, ``hop_length``, ``dimension``), and ``forward`` through ``self.model``.

    Args:
        config (SEANetConfig | None): the network's settings (None: the defaults).
        overrides (dict): :class:`SEANetConfig` fields replacing those of ``config``
            (the subclasses take them as keyword arguments).

    Raises:
        ValueError: from :class:`SEANetConfig`; TypeError: an unknown field.
    """

    def __init__(self, config: SEANetConfig | None, overrides: dict[str, Any]):
        super().__init__()
        self.config = config = with_overrides(SEANetConfig, config, overrides)
        self.ratios = list(config.ratios)
        self.hop_length = config.hop_length
        self.dimension = config.dimension

    def forward(self, x: Tensor) -> Tensor:
        """Run the network (shapes in the class docstring)."""
        return self.model(x)


class SEANetEncoder(_SEANet):
    """SEANet encoder: waveform (B, channels, T) -> latent (B, D, ceil(T / hop_length)).

    Built from a :class:`SEANetConfig` and keyword overrides of its fields (arguments and
    errors as :class:`_SEANet`).
    """

    def __init__(self, config: SEANetConfig | None = None, **overrides: Any):
        super().__init__(config, overrides)
        c = self.config
        conv, flags = c.conv_options(), norm_flags(c.norm, c.causal)
        mult = 1
        layers: list[nn.Module] = [SConv1d(c.channels, c.n_filters, c.kernel_size, **conv, **flags)]
        for ratio in reversed(self.ratios):
            dim = mult * c.n_filters
            layers += [c.residual_unit(dim, j) for j in range(c.n_residual_layers)]
            down = SConv1d(dim, 2 * dim, 2 * ratio, ratio, **conv, **flags)
            layers += [make_activation(c.activation), down]
            mult *= 2
        if c.lstm:
            layers.append(SLSTM(mult * c.n_filters, num_layers=c.lstm))
        layers += [
            make_activation(c.activation),
            SConv1d(mult * c.n_filters, c.dimension, c.last_kernel_size, **conv, **flags),
        ]
        self.model = nn.Sequential(*layers)


class SEANetDecoder(_SEANet):
    """SEANet decoder: latent (B, D, F) -> waveform (B, channels, F * hop_length).

    Built from a :class:`SEANetConfig` and keyword overrides of its fields (arguments and
    errors as :class:`_SEANet`).
    """

    def __init__(self, config: SEANetConfig | None = None, **overrides: Any):
        super().__init__(config, overrides)
        c = self.config
        conv, flags = c.conv_options(), norm_flags(c.norm, c.causal)
        mult = 2 ** len(self.ratios)
        layers: list[nn.Module] = [
            SConv1d(c.dimension, mult * c.n_filters, c.kernel_size, **conv, **flags)
        ]
        if c.lstm:
            layers.append(SLSTM(mult * c.n_filters, num_layers=c.lstm))
        for ratio in self.ratios:
            dim = mult * c.n_filters
            upsample = SConvTranspose1d(
                dim,
                dim // 2,
                2 * ratio,
                ratio,
                causal=c.causal,
                trim_right_ratio=c.trim_right_ratio if c.causal else 1.0,
                **flags,
            )
            layers += [make_activation(c.activation), upsample]
            layers += [c.residual_unit(dim // 2, j) for j in range(c.n_residual_layers)]
            mult //= 2
        layers += [
            make_activation(c.activation),
            SConv1d(c.n_filters, c.channels, c.last_kernel_size, **conv, **flags),
        ]
        self.model = nn.Sequential(*layers)
