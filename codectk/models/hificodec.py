"""HiFi-Codec: HiFi-GAN style encoder/decoder around a group-residual vector quantiser.

Yang, Liu, Huang, Tian, Weng, Zou, "HiFi-Codec: Group-residual Vector quantization for
High Fidelity Audio Codec", arXiv 2305.02765, 2023; released as AcademiCodec
(github.com/yangdongchao/AcademiCodec, ``academicodec/models/hificodec``):

* Encoder (:class:`~codectk.nn.hifigan.HiFiCodecEncoder`): the HiFi-GAN generator
  mirrored, C = 32 channels doubled at strides (2, 4, 5, 8), MRF blocks with GroupNorm,
  D = 512. Decoder (:class:`~codectk.nn.hifigan.HiFiGANGenerator`): HiFi-GAN V1,
  upsample rates (8, 5, 4, 2) with kernels (16, 11, 8, 4), 512 initial channels, MRF
  kernels (3, 7, 11) with dilations (1, 3, 5), tanh output. Hop 320 samples.
* GRVQ (:mod:`codectk.quantization.grvq`): G = 2 groups of 256 channels, 2 residual
  stages each, 1024 entries: K = 4 codebooks, 4 * 10 bits per frame, i.e. 2 kbps at
  16 kHz (50 Hz) and 3 kbps at 24 kHz (75 Hz) (AcademiCodec's ``config_16k_320d.json`` and
  ``config_24k_320d.json``).
  ``codebook_update: gradient`` learns the codebooks by gradient as AcademiCodec's
  ``Quantizer`` does: 4 x 1024 x 256 = 1,048,576 parameters, a codebook loss and a
  commitment loss (AcademiCodec weights them 1 and 0.25, x 10). ``ema`` trains them by EMA
  with k-means initialisation and dead-code replacement instead (buffers, as every codectk
  RVQ).
* Discriminators (AcademiCodec ``train.py``): HiFi-GAN's MPD and MSD plus EnCodec's
  MS-STFT, trained with least-squares GAN losses, feature matching and mel reconstruction
  (:mod:`codectk.losses.hificodec_loss`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.hifigan import HiFiCodecEncoder, HiFiGANGenerator
from codectk.quantization import QUANTIZERS
from codectk.registry import build_section, define_preset, merge_sections


@CODECS.register("hificodec")
class HiFiCodec(AutoencoderCodec):
    """HiFi-Codec (generator). Defaults are AcademiCodec's 16 kHz, hop-320 model, except
    ``quantizer.codebook_update`` and ``decoder.output_negative_slope``, whose defaults
    ("ema", 0.01) keep models configured before they existed unchanged;
    :func:`hificodec_16k_conf` and the paper configs set AcademiCodec's ("gradient", 0.1).

    Args:
        sample_rate (int): audio rate in Hz.
        dimension (int): latent dimension D (divisible by the quantizer's ``n_groups``).
        encoder (dict | None): arguments of :class:`~codectk.nn.hifigan.HiFiCodecEncoder`
            but ``dimension``; the layout keys (``upsample_rates`` ...
            ``resblock_dilation_sizes``) are the decoder's too (the encoder mirrors it).
            Unset keys keep :attr:`ENCODER`: ``n_filters`` 32 (input-conv channels C,
            doubled per downsampling), ``upsample_rates`` [8, 5, 4, 2] (the decoder's
            upsampling factors, the encoder's strides reversed; hop = their product, in
            samples), ``upsample_kernel_sizes`` [16, 11, 8, 4], ``resblock`` "1" (MRF
            block: HiFi-GAN ResBlock1 or "2"), ``resblock_kernel_sizes`` [3, 7, 11],
            ``resblock_dilation_sizes`` [[1, 3, 5]] * 3, ``group_norm_size`` 16 (channels
            per GroupNorm group).
        decoder (dict | None): arguments of :class:`~codectk.nn.hifigan.HiFiGANGenerator`
            but ``dimension``; the layout keys default to the encoder's (a change must keep
            the hop). Unset keys keep :attr:`DECODER`: ``upsample_initial_channel`` 512
            (channels after the input conv), ``output_negative_slope`` 0.01 (LeakyReLU
            slope before the output conv; AcademiCodec's Generator: 0.1, HiFi-GAN's: 0.01).
        quantizer (dict | None): arguments of the GRVQ
            (:class:`~codectk.quantization.grvq.GroupResidualVectorQuantizer`, which
            documents them) but ``dimension`` and ``quantizer_dropout``; unset keys keep
            :attr:`QUANTIZER`: ``n_groups`` 2 (G), ``n_codebooks_per_group`` 2 (stages; K =
            G * stages), ``codebook_size`` 1024, ``codebook_update`` "ema" ("gradient":
            AcademiCodec's learned codebooks). With "ema", the EMA options left unset (or
            None) take :attr:`EMA`: ``decay`` 0.99, ``kmeans_init`` True, ``kmeans_iters``
            50, ``threshold_ema_dead_code`` 2.0 (frames per batch, 0: never); with
            "gradient" they must stay unset.
        quantizer_dropout (float): probability that a training batch uses n ~ U{1..stages}
            stages of every group (HiFi-Codec: 0, always all).

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section, naming it
            (``codec_conf.encoder``, ``codec_conf.decoder``, ``codec_conf.quantizer``).
        ValueError: for inconsistent layout or quantizer settings (an EMA option with
            ``codebook_update: gradient`` included), or a decoder whose upsampling does not
            match the encoder's hop.
    """

    ENCODER: ClassVar[dict[str, Any]] = dict(
        n_filters=32,
        upsample_rates=[8, 5, 4, 2],
        upsample_kernel_sizes=[16, 11, 8, 4],
        resblock="1",
        resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5]] * 3,
        group_norm_size=16,
    )
    DECODER: ClassVar[dict[str, Any]] = dict(
        upsample_initial_channel=512, output_negative_slope=0.01
    )
    QUANTIZER: ClassVar[dict[str, Any]] = dict(
        n_groups=2, n_codebooks_per_group=2, codebook_size=1024, codebook_update="ema"
    )
    EMA: ClassVar[dict[str, Any]] = dict(
        decay=0.99, kmeans_init=True, kmeans_iters=50, threshold_ema_dead_code=2.0
    )
    _LAYOUT = (
        "upsample_rates",
        "upsample_kernel_sizes",
        "resblock",
        "resblock_kernel_sizes",
        "resblock_dilation_sizes",
    )

    def __init__(
        self,
        sample_rate: int = 16000,
        dimension: int = 512,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        quantizer_dropout: float = 0.0,
    ):
        super().__init__()
        enc = merge_sections(self.ENCODER, encoder)
        encoder_net = build_section(
            HiFiCodecEncoder, enc, "codec_conf.encoder", dimension=dimension
        )
        hop_length = math.prod(enc["upsample_rates"])
        q = merge_sections(self.QUANTIZER, quantizer)
        if q.get("codebook_update") == "ema":  # this family's EMA defaults
            q.update({k: v for k, v in self.EMA.items() if q.get(k) is None})
        grvq = build_section(
            QUANTIZERS.get("grvq"),
            q,
            "codec_conf.quantizer",
            dimension=dimension,
            quantizer_dropout=quantizer_dropout,
        )
        layout = {k: enc[k] for k in self._LAYOUT}
        dec = merge_sections(layout, self.DECODER, decoder)
        decoder_net = build_section(
            HiFiGANGenerator, dec, "codec_conf.decoder", dimension=dimension
        )
        if math.prod(dec["upsample_rates"]) != hop_length:
            raise ValueError(
                f"codec_conf.decoder: upsample_rates {dec['upsample_rates']} must multiply "
                f"to the encoder's hop {hop_length}"
            )
        self.assemble(
            sample_rate,
            hop_length=hop_length,
            encoder=encoder_net,
            quantizer=grvq,
            decoder=decoder_net,
        )


hificodec_16k_conf = define_preset(
    HiFiCodec,
    "hificodec_16k_conf",
    """``codec_conf`` of AcademiCodec's HiFi-Codec-16k-320d: 50 Hz, 2 x 2 x 1024, 2 kbps.""",
    encoder=dict(
        upsample_rates=[8, 5, 4, 2],
        upsample_kernel_sizes=[16, 11, 8, 4],
        resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    ),
    decoder=dict(output_negative_slope=0.1),
    quantizer=dict(codebook_update="gradient"),
)


hificodec_24k_conf = define_preset(
    HiFiCodec,
    "hificodec_24k_conf",
    """``codec_conf`` of AcademiCodec's HiFi-Codec-24k-320d: 75 Hz, 2 x 2 x 1024, 3 kbps.""",
    base=hificodec_16k_conf,
    sample_rate=24000,
)


hificodec_tiny_conf = define_preset(
    HiFiCodec,
    "hificodec_tiny_conf",
    """``codec_conf`` of a toy HiFi-Codec for tests and the CPU demo.

    16 kHz, hop 320 (50 Hz), C = 4, D = 32, decoder 64 channels, one MRF kernel (3) with
    ResBlock2 dilations (1, 3), 2 groups x 2 stages x 64 entries (1.2 kbps), codebooks
    learned by gradient as the paper-size model's.""",
    base=hificodec_16k_conf,
    dimension=32,
    encoder=dict(
        n_filters=4, resblock="2", resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]]
    ),
    decoder=dict(upsample_initial_channel=64),
    quantizer=dict(codebook_size=64),
)
