"""AudioDec: the streaming symmetric codec (``symad``) and the AD vocoder codec (``audiodec``).

Wu, Gebru, Marković, Richard, "AudioDec: An Open-source Streaming High-fidelity Neural
Audio Codec", ICASSP 2023 (facebookresearch/AudioDec):

* ``symad`` (§2.1, the "symAD" autoencoder): causal encoder -> projector -> residual
  VQ -> causal decoder (:mod:`codectk.nn.audiodec_net`). Paper size at 48 kHz: C = 32,
  strides (3, 4, 5, 5) (hop 300, 160 Hz frames), D = 64, 8 codebooks x 1024 ->
  8 x 10 bit x 160 Hz = 12.8 kbps; the 24 kHz LibriTTS model (same layers, hop 300,
  80 Hz) gives 6.4 kbps. The codebooks are EMA buffers (decay 0.8, random init, no
  dead-code replacement), so the trainable parameters are 7,939,936 at paper size, as
  the authors' ``Generator``.
  Training (§2.2, ``trainer/autoencoder.py``): metric losses only (mel + VQ) for the
  first N steps; then, with encoder, projector and quantizer frozen, the decoder with
  the discriminators. In codectk: ``discriminator_start_step: N``,
  ``freeze_modules: [encoder, projector, quantizer]``, ``freeze_from_step: N``.
* ``audiodec`` (§2.3, "AD v0/v1/v2"): the trained symAD encoder, projector and
  quantizer (frozen, copied with the trainer's ``init_from``/``init_modules``) feed the
  quantised latent, normalised by the training set's per-dimension mean and standard
  deviation (``codectk.bin.code_stats``, as ``codecStatistic.py``), to a causal HiFi-GAN
  vocoder. AD v1 (multi-group block, groups 3, kernel 11) has 19,461,090 parameters
  with weight normalisation.

Both are streamable: :class:`codectk.streaming.Streamer` gives, chunk after chunk,
exactly the whole-utterance output; the algorithmic delay is the chunk length (no
look-ahead).
MIMO (AudioDec's ``input_channels`` / ``output_channels``): ``encode`` takes
(B, input_channels, T) and ``decode`` returns (B, output_channels, T'); the training
losses and data pipeline are mono, so train with 1 / 1.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codectk.errors import CodectkError, check_choice
from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.audiodec_net import (
    AudioDecDecoder,
    AudioDecEncoder,
    CausalHiFiGANGenerator,
    Projector,
)
from codectk.quantization import QUANTIZERS
from codectk.quantization.base import HostFlag
from codectk.registry import build_section, define_preset, merge_sections

log = logging.getLogger(__name__)


class AudioDecAnalysis(AutoencoderCodec):
    """Encoder, projector and residual VQ shared by ``symad`` and ``audiodec``.

    Sections (``codec_conf.encoder`` / ``codec_conf.quantizer``; a section given in a
    config keeps the defaults of the keys it leaves out):

    * ``encoder``: arguments of :class:`~codectk.nn.audiodec_net.AudioDecEncoder` (its
      ``in_channels`` is ``input_channels``), defaults :attr:`ENCODER`: ``channels`` (C,
      32; AudioDec's ``encode_channels``), ``channel_ratios`` ([2, 4, 8, 16];
      ``enc_ratios``), ``strides`` (samples, [3, 4, 5, 5]; ``enc_strides``; the hop is
      their product), ``kernel_size`` (first conv, 7).
    * ``quantizer``: arguments of :class:`~codectk.quantization.rvq.ResidualVectorQuantizer`
      (its ``dimension`` is ``code_dim``), defaults :attr:`QUANTIZER`: ``n_codebooks`` (K,
      8; ``codebook_num``), ``codebook_size`` (1024), ``decay`` (codebook EMA, 0.8;
      ``ema_decay``), ``kmeans_init`` (False: random codebooks, as AudioDec),
      ``threshold_ema_dead_code`` (0: no dead-code replacement), ``ema_init``
      ("weighted") and ``random_init`` ("kaiming_uniform"): AudioDec's own start is
      ``ema_init: unweighted`` (cluster sizes 0) and ``random_init: normal`` (randn(D, V)
      codebooks), which its configs set; see
      :class:`~codectk.quantization.vq.EuclideanCodebook`.

    Subclasses set ``decoder`` (a causal network mapping (B, D, F) to
    (B, output_channels, F * hop)) and may override :meth:`synthesise`.
    """

    ENCODER: dict[str, Any] = dict(
        channels=32, channel_ratios=[2, 4, 8, 16], strides=[3, 4, 5, 5], kernel_size=7
    )
    QUANTIZER: dict[str, Any] = dict(
        n_codebooks=8,
        codebook_size=1024,
        decay=0.8,
        kmeans_init=False,
        threshold_ema_dead_code=0.0,
        ema_init="weighted",
        random_init="kaiming_uniform",
    )

    def _build_analysis(
        self,
        sample_rate: int,
        input_channels: int,
        code_dim: int,
        encoder: Mapping[str, Any] | None,
        quantizer: Mapping[str, Any] | None,
    ) -> None:
        """Build ``encoder``, ``projector`` and ``quantizer`` (in this order: the random
        initialisation under a seed depends on it) from their sections.

        Raises:
            ValueError: ``input_channels`` < 1; ConfigError (a ValueError): an unknown or
                badly typed section key; whatever the networks raise.
        """
        if input_channels < 1:
            raise ValueError(f"input_channels must be >= 1, got {input_channels}")
        enc = merge_sections(self.ENCODER, encoder)
        quant = merge_sections(self.QUANTIZER, quantizer)
        self.sample_rate = sample_rate
        self.channels = input_channels
        self.code_dim = code_dim
        self.encoder = build_section(
            AudioDecEncoder, enc, "codec_conf.encoder", in_channels=input_channels
        )
        self.hop_length = math.prod(enc["strides"])
        self.projector = Projector(self.encoder.out_channels, code_dim)
        self.quantizer = build_section(
            QUANTIZERS.get("rvq"), quant, "codec_conf.quantizer", dimension=code_dim
        )
        self.n_codebooks = quant["n_codebooks"]
        self.codebook_size = quant["codebook_size"]

    def latent(self, wav: Tensor) -> Tensor:
        """Waveform (B, input_channels, T) -> z (B, D, ceil(T / hop))."""
        return self.projector(self.encoder(self.pad(wav)))


@CODECS.register("symad")
class SymAD(AudioDecAnalysis):
    """AudioDec's symmetric autoencoder codec ("symAD"); defaults are the paper's 48 kHz
    VCTK model (``symAD_vctk_48000_hop300``).

    Args:
        sample_rate (int): Hz.
        input_channels (int): channels of the input audio (MIMO).
        output_channels (int): channels of the decoded audio (MIMO).
        code_dim (int): D, the latent (projector output, codeword) dimension.
        encoder (dict | None): the encoder section (:class:`AudioDecAnalysis`).
        decoder (dict | None): arguments of
            :class:`~codectk.nn.audiodec_net.AudioDecDecoder` (its ``code_dim`` and
            ``out_channels`` are the codec's), defaults :attr:`DECODER`: ``channels`` (C,
            32; AudioDec's ``decode_channels``), ``channel_ratios`` ([16, 8, 4, 2];
            ``dec_ratios``), ``strides`` (samples, [5, 5, 4, 3]; ``dec_strides``, the same
            product as the encoder's), ``kernel_size`` (first/last conv, 7).
        quantizer (dict | None): the quantizer section (:class:`AudioDecAnalysis`).

    Raises:
        ValueError: encoder and decoder strides with different products, or bad sizes;
            ConfigError (a ValueError): an unknown or badly typed section key.
    """

    DECODER: dict[str, Any] = dict(
        channels=32, channel_ratios=[16, 8, 4, 2], strides=[5, 5, 4, 3], kernel_size=7
    )

    def __init__(
        self,
        sample_rate: int = 48000,
        input_channels: int = 1,
        output_channels: int = 1,
        code_dim: int = 64,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
    ):
        super().__init__()
        self._build_analysis(sample_rate, input_channels, code_dim, encoder, quantizer)
        dec = merge_sections(self.DECODER, decoder)
        if math.prod(dec["strides"]) != self.hop_length:
            raise ValueError(
                f"codec_conf.decoder.strides {dec['strides']} must have the product "
                f"{self.hop_length} of codec_conf.encoder.strides"
            )
        self.output_channels = output_channels
        self.decoder = build_section(
            AudioDecDecoder,
            dec,
            "codec_conf.decoder",
            code_dim=code_dim,
            out_channels=output_channels,
        )


def read_code_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read code statistics written by ``codectk.bin.code_stats``.

    Accepts the ``.npy`` array (2, D) of AudioDec's ``codecStatistic.py`` (row 0 mean,
    row 1 standard deviation) or codectk's ``.json`` (``mean``, ``scale`` lists).

    Returns:
        tuple[np.ndarray, np.ndarray]: mean (D,) and scale (D,), float32.

    Raises:
        CodectkError: missing or malformed file, or a non-positive scale.
    """
    path = Path(path)
    if not path.is_file():
        raise CodectkError(f"{path}: code statistics file not found (run codectk.bin.code_stats)")
    try:
        if path.suffix == ".json":
            obj = json.loads(path.read_text())
            mean, scale = np.asarray(obj["mean"]), np.asarray(obj["scale"])
        else:
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 2 or arr.shape[0] != 2:
                raise ValueError(f"expected an array (2, D), got {arr.shape}")
            mean, scale = arr[0], arr[1]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodectkError(f"{path}: not a code statistics file: {exc}") from None
    if mean.shape != scale.shape or mean.ndim != 1:
        raise CodectkError(f"{path}: mean {mean.shape} and scale {scale.shape} must be (D,)")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise CodectkError(f"{path}: statistics must be finite with scale > 0")
    return mean.astype(np.float32), scale.astype(np.float32)


@CODECS.register("audiodec")
class AudioDecVocoder(AudioDecAnalysis):
    """AudioDec with a HiFi-GAN vocoder decoder (AD v0 / v1 / v2); defaults are AD v1 at
    48 kHz (``AudioDec_v1_symAD_vctk_48000_hop300_clean``).

    ``sample_rate``, ``input_channels``, ``code_dim``, ``encoder`` and ``quantizer`` are
    those of :class:`SymAD` (they must match the symAD experiment named by ``init_from``).

    Args:
        sample_rate (int): Hz.
        input_channels (int): channels of the input audio (MIMO).
        output_channels (int): channels of the decoded audio (MIMO).
        code_dim (int): D, the latent dimension.
        encoder (dict | None): the encoder section (:class:`AudioDecAnalysis`).
        decoder (dict | None): the vocoder, arguments of
            :class:`~codectk.nn.audiodec_net.CausalHiFiGANGenerator` (its ``in_channels``
            and ``out_channels`` are ``code_dim`` and ``output_channels``), defaults
            :attr:`DECODER`: ``channels`` (after the first conv, 512; AudioDec's
            ``vocoder_channels``), ``kernel_size`` (first/last conv, 7;
            ``vocoder_kernel_size``), ``upsample_scales`` ([5, 5, 4, 3], product = hop),
            ``resblock_kernel_sizes`` (v0: [3, 7, 11]; v1: [11]; v2: [3]),
            ``resblock_dilations`` (one list per kernel; default [1, 3, 5] for each),
            ``groups``
            (multi-group block groups, v1/v2: 3; v0: 1 = MRF), ``slope`` (LeakyReLU, 0.1).
        quantizer (dict | None): the quantizer section (:class:`AudioDecAnalysis`).
        stats (str | None): code statistics (``.npy`` (2, D) or ``.json``) used to
            normalise the quantised latent: (z_q - mean) / scale. Stored as buffers, so
            a trained model does not need the file; when the file is missing at build
            time the model warns and refuses to *train* until it is given.

    Raises:
        ValueError: upsampling product != hop; CodectkError: a bad statistics file;
            ConfigError (a ValueError): an unknown or badly typed section key.
    """

    DECODER: dict[str, Any] = dict(
        channels=512,
        kernel_size=7,
        upsample_scales=[5, 5, 4, 3],
        resblock_kernel_sizes=[11],
        groups=3,
        slope=0.1,
    )

    def __init__(
        self,
        sample_rate: int = 48000,
        input_channels: int = 1,
        output_channels: int = 1,
        code_dim: int = 64,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        stats: str | None = None,
    ):
        super().__init__()
        self._build_analysis(sample_rate, input_channels, code_dim, encoder, quantizer)
        dec = merge_sections(self.DECODER, decoder)
        if math.prod(dec["upsample_scales"]) != self.hop_length:
            raise ValueError(
                f"codec_conf.decoder.upsample_scales {dec['upsample_scales']} must multiply "
                f"to the hop {self.hop_length} of codec_conf.encoder.strides"
            )
        self.output_channels = output_channels
        self.decoder = build_section(
            CausalHiFiGANGenerator,
            dec,
            "codec_conf.decoder",
            in_channels=code_dim,
            out_channels=output_channels,
        )
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_scale", torch.ones(code_dim))
        self.register_buffer("stats_loaded", torch.tensor(False))
        self._stats_loaded = HostFlag()
        self.stats_path = stats
        if stats is not None:
            if Path(stats).is_file():
                self.set_code_stats_(*read_code_stats(stats))
            else:
                log.warning(
                    "code statistics %s not found: using the statistics stored in the model "
                    "file, if any (training needs the file)",
                    stats,
                )

    @torch.no_grad()
    def set_code_stats_(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Set the latent normalisation (mean (D,), scale (D,)).

        Raises:
            ValueError: statistics of another dimension than D.
        """
        if mean.shape != (self.code_dim,) or scale.shape != (self.code_dim,):
            raise ValueError(
                f"code statistics have dimension {mean.shape}, the codec's code_dim is {self.code_dim}"
            )
        self.code_mean.copy_(torch.from_numpy(mean))
        self.code_scale.copy_(torch.from_numpy(scale))
        self.stats_loaded.fill_(True)

    def on_train_step(self, step: int) -> None:
        """Refuse to train a vocoder without code statistics.

        Raises:
            CodectkError: when ``stats`` was not given or not loaded.
        """
        if not self._stats_loaded.read(self.stats_loaded):  # no device read per step
            raise CodectkError(
                f"audiodec: code statistics not loaded (stats={self.stats_path!r}); run "
                "codectk.bin.code_stats on the symAD experiment and pass --codec_conf.stats"
            )

    def normalise(self, z_q: Tensor) -> Tensor:
        """(z_q - mean) / scale per latent dimension; (B, D, F) -> (B, D, F)."""
        return (z_q - self.code_mean[:, None]) / self.code_scale[:, None]

    def synthesise(self, z_q: Tensor) -> Tensor:
        """Quantised latent (B, D, F) -> waveform (B, output_channels, F * hop)."""
        return self.decoder(self.normalise(z_q))


symad_48k_conf = define_preset(
    SymAD,
    "symad_48k_conf",
    "``symAD_vctk_48000_hop300``: 48 kHz, hop 300, 8 x 1024 codebooks, 12.8 kbps.",
    sample_rate=48000,
)

symad_24k_conf = define_preset(
    SymAD,
    "symad_24k_conf",
    "``symAD_libritts_24000_hop300``: 24 kHz, hop 300, 8 x 1024 codebooks, 6.4 kbps.",
    sample_rate=24000,
)

# the AD vocoder layouts (``codec_conf.decoder``)
_VOCODER_LAYOUTS = {
    "v0": {"resblock_kernel_sizes": [3, 7, 11], "groups": 1},
    "v1": {"resblock_kernel_sizes": [11], "groups": 3},
    "v2": {"resblock_kernel_sizes": [3], "groups": 3},
}


def audiodec_vocoder_conf(version: str, sample_rate: int = 48000) -> dict[str, Any]:
    """The AD vocoder layouts: "v0" (MRF 3/7/11), "v1" (groups 3, kernel 11), "v2"
    (groups 3, kernel 3), dilations [1, 3, 5] per kernel.

    Args:
        version (str): "v0", "v1" or "v2".
        sample_rate (int): Hz.

    Returns:
        dict[str, Any]: ``sample_rate`` and the ``decoder`` section of
        :class:`AudioDecVocoder` (the arguments this layout sets; the rest keep their
        defaults).

    Raises:
        ValueError: an unknown version.
    """
    check_choice("AudioDec vocoder", version, _VOCODER_LAYOUTS)
    return {"sample_rate": sample_rate, "decoder": dict(_VOCODER_LAYOUTS[version])}
