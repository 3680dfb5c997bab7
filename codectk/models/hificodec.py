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
from typing import Any

from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.hifigan import HiFiCodecEncoder, HiFiGANGenerator
from codectk.quantization import QUANTIZERS
from codectk.registry import define_preset


@CODECS.register("hificodec")
class HiFiCodec(AutoencoderCodec):
    """HiFi-Codec (generator). Defaults are AcademiCodec's 16 kHz, hop-320 model, except
    ``codebook_update`` and ``output_negative_slope``, whose defaults ("ema", 0.01) keep
    models configured before they existed unchanged; :func:`hificodec_16k_conf` and the
    paper configs set AcademiCodec's ("gradient", 0.1).

    Args:
        sample_rate (int): audio rate in Hz.
        n_filters (int): encoder input-conv channels C (doubled per downsampling).
        dimension (int): latent dimension D (divisible by ``n_groups``).
        upsample_rates (list[int] | None): decoder upsampling factors; the encoder uses
            them reversed as strides; hop = their product (default [8, 5, 4, 2]).
        upsample_kernel_sizes (list[int] | None): their kernels (default [16, 11, 8, 4]).
        upsample_initial_channel (int): decoder channels after its input conv.
        output_negative_slope (float): LeakyReLU slope before the decoder's output conv
            (AcademiCodec's Generator: 0.1; HiFi-GAN's: 0.01).
        resblock (str): MRF block type, "1" or "2" (HiFi-GAN ResBlock1/2).
        resblock_kernel_sizes (list[int] | None): MRF kernels (default [3, 7, 11]).
        resblock_dilation_sizes (list[list[int]] | None): MRF dilations (default
            [[1, 3, 5]] * 3).
        n_groups (int): GRVQ groups G.
        n_codebooks_per_group (int): residual stages per group; K = G * stages.
        codebook_size (int): entries per codebook.
        codebook_update (str): "gradient" (AcademiCodec's learned codebooks) or "ema".
        ema_decay (float | None): EMA decay of the codebooks ("ema" only; None: 0.99).
        kmeans_init (bool | None): k-means initialisation of the codebooks on the first
            batch ("ema" only; None: True).
        kmeans_iters (int | None): k-means iterations ("ema" only; None: 50).
        threshold_ema_dead_code (float | None): dead-code threshold in frames per batch,
            0: never ("ema" only; None: 2).
        quantizer_dropout (float): probability that a training batch uses n ~ U{1..stages}
            stages of every group (HiFi-Codec: 0, always all).

    Raises:
        ValueError: for inconsistent layout or quantizer settings (an EMA option with
            ``codebook_update: gradient`` included).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_filters: int = 32,
        dimension: int = 512,
        upsample_rates: list[int] | None = None,
        upsample_kernel_sizes: list[int] | None = None,
        upsample_initial_channel: int = 512,
        output_negative_slope: float = 0.01,
        resblock: str = "1",
        resblock_kernel_sizes: list[int] | None = None,
        resblock_dilation_sizes: list[list[int]] | None = None,
        n_groups: int = 2,
        n_codebooks_per_group: int = 2,
        codebook_size: int = 1024,
        codebook_update: str = "ema",
        ema_decay: float | None = None,
        kmeans_init: bool | None = None,
        kmeans_iters: int | None = None,
        threshold_ema_dead_code: float | None = None,
        quantizer_dropout: float = 0.0,
    ):
        super().__init__()
        layout: dict[str, Any] = dict(
            upsample_rates=[8, 5, 4, 2] if upsample_rates is None else upsample_rates,
            upsample_kernel_sizes=(
                [16, 11, 8, 4] if upsample_kernel_sizes is None else upsample_kernel_sizes
            ),
            resblock=resblock,
            resblock_kernel_sizes=(
                [3, 7, 11] if resblock_kernel_sizes is None else resblock_kernel_sizes
            ),
            resblock_dilation_sizes=(
                [[1, 3, 5]] * 3 if resblock_dilation_sizes is None else resblock_dilation_sizes
            ),
        )
        encoder = HiFiCodecEncoder(n_filters, dimension, **layout)
        if codebook_update == "ema":  # this family's EMA defaults
            ema_decay = 0.99 if ema_decay is None else ema_decay
            kmeans_init = True if kmeans_init is None else kmeans_init
            kmeans_iters = 50 if kmeans_iters is None else kmeans_iters
            threshold_ema_dead_code = (
                2.0 if threshold_ema_dead_code is None else threshold_ema_dead_code
            )
        quantizer = QUANTIZERS.build(
            "grvq",
            dict(
                dimension=dimension,
                n_groups=n_groups,
                n_codebooks_per_group=n_codebooks_per_group,
                codebook_size=codebook_size,
                decay=ema_decay,
                kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters,
                threshold_ema_dead_code=threshold_ema_dead_code,
                quantizer_dropout=quantizer_dropout,
                codebook_update=codebook_update,
            ),
        )
        decoder = HiFiGANGenerator(
            dimension,
            upsample_initial_channel,
            output_negative_slope=output_negative_slope,
            **layout,
        )
        self.assemble(
            sample_rate,
            hop_length=math.prod(layout["upsample_rates"]),
            encoder=encoder,
            quantizer=quantizer,
            decoder=decoder,
        )


hificodec_16k_conf = define_preset(
    HiFiCodec,
    "hificodec_16k_conf",
    """``codec_conf`` of AcademiCodec's HiFi-Codec-16k-320d: 50 Hz, 2 x 2 x 1024, 2 kbps.""",
    upsample_rates=[8, 5, 4, 2],
    upsample_kernel_sizes=[16, 11, 8, 4],
    output_negative_slope=0.1,
    resblock_kernel_sizes=[3, 7, 11],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    codebook_update="gradient",
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
    n_filters=4,
    dimension=32,
    upsample_initial_channel=64,
    resblock="2",
    resblock_kernel_sizes=[3],
    resblock_dilation_sizes=[[1, 3]],
    codebook_size=64,
)
