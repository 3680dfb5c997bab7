"""SoundStream: causal SEANet encoder/decoder around an EMA residual vector quantiser.

Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi, "SoundStream: An End-to-End Neural Audio
Codec", IEEE/ACM TASLP 30, 2021 (arXiv 2107.03312):

* Encoder (§III-A, Fig. 2): Conv(k=7, C) -> 4 blocks [3 residual units with dilations 1,
  3, 9 (Conv k=7 then Conv k=1, identity skip), Conv(k=2S, stride S) doubling the
  channels] with strides (2, 4, 5, 8) -> Conv(k=3, D). ELU, no normalisation, causal
  convolutions (padding only in the past). Hop M = 320 samples: 75 Hz at 24 kHz.
* Decoder (§III-B): Conv(k=7, 16C) -> 4 blocks [ConvTranspose(k=2S, stride S) halving
  the channels, 3 residual units] with strides (8, 5, 4, 2) -> Conv(k=7, 1).
* Residual vector quantiser (§III-C, Algorithm 1): EMA codebooks with k-means
  initialisation and dead-code replacement; N_q = 8 codebooks of 1024 entries give
  8 * 10 bits * 75 Hz = 6 kbps; quantizer dropout trains one model for 0.75..6 kbps.
* Paper sizes: C_enc = C_dec = 32. The paper does not give D as a number; 512 (= 16C, the
  width of the last encoder block) follows common reimplementations.

SoundStream and EnCodec are one family (a SEANet autoencoder around an EMA residual
vector quantiser): :class:`SoundStream` is :class:`~codectk.models.encodec.EnCodec` with
SoundStream's settings as its defaults (:data:`SOUNDSTREAM`), and it takes every EnCodec
argument (``codec_conf`` sections ``encoder``, ``decoder``, ``quantizer``). Its
convolutions are weight-normalised (``encoder.norm``, as EnCodec's); quantizer dropout
draws K' uniformly in 1..K (``n_quantizers_sampling: uniform``) with probability
``quantizer_dropout``.

The adversarial and reconstruction losses (§III-D) live in :mod:`codectk.losses` and
:mod:`codectk.discriminators`; this module is the generator.
"""

from __future__ import annotations

from typing import Any

from codectk.models.base import CODECS
from codectk.models.encodec import EnCodec
from codectk.registry import define_preset, merge_sections, preset_signature

SOUNDSTREAM: dict[str, Any] = dict(
    encoder=dict(
        dimension=512,
        n_residual_layers=3,  # dilations 1, 3, 9
        dilation_base=3,
        residual_kernel_size=7,
        last_kernel_size=3,
        causal_pad_mode="constant",  # zeros: strictly causal
        lstm=0,
        compress=1,  # residual units keep N channels (Fig. 2)
        true_skip=True,  # identity skips
    ),
    decoder=dict(last_kernel_size=7),  # the output conv (k=7) against the encoder's k=3
    quantizer=dict(n_codebooks=8),
    quantizer_dropout=1.0,
    n_quantizers_sampling="uniform",
    quantizer_dropout_coin="always",
)
"""SoundStream's settings where they differ from :class:`EnCodec`'s defaults (sections
key by key): the paper's 24 kHz model, 8 x 1024 codebooks at 75 Hz (0.75 to 6 kbps)."""

_SECTIONS = ("encoder", "decoder", "quantizer")


@CODECS.register("soundstream")
class SoundStream(EnCodec):
    """SoundStream codec (generator): :class:`EnCodec` with :data:`SOUNDSTREAM` as its
    defaults (the paper's 24 kHz, 6 kbps model), merged section by section
    (:func:`~codectk.registry.merge_sections`): ``quantizer: {n_codebooks: 4}`` keeps
    SoundStream's other quantizer settings.

    Args:
        **conf: any :class:`EnCodec` argument (``codec_conf``: ``encoder``, ``decoder``,
            ``quantizer`` sections and top-level options, as :class:`EnCodec` lists them).

    Raises:
        ValueError: as :class:`EnCodec`.
    """

    def __init__(self, **conf: Any):
        # a null section is SoundStream's defaults, as it is EnCodec's for EnCodec
        conf = {k: v for k, v in conf.items() if not (v is None and k in _SECTIONS)}
        super().__init__(**merge_sections(SOUNDSTREAM, conf))


SoundStream.__signature__ = preset_signature(EnCodec, SOUNDSTREAM)


soundstream_24khz_conf = define_preset(
    SoundStream,
    "soundstream_24khz_conf",
    """``codec_conf`` of the paper's 24 kHz model (the class defaults): 8 x 1024
    codebooks, 75 Hz, 0.75-6 kbps.""",
    encoder=dict(ratios=[8, 5, 4, 2]),
)


soundstream_tiny_conf = define_preset(
    SoundStream,
    "soundstream_tiny_conf",
    """``codec_conf`` of a toy SoundStream for tests and the CPU demo.

    16 kHz, hop 320 (50 Hz), C = 8, D = 64, 4 codebooks of 256 entries (1.6 kbps), one
    residual unit per block (the paper's three, dilations 1, 3, 9, cost about 2.5x more:
    pass ``encoder={"n_residual_layers": 3}``).""",
    base=soundstream_24khz_conf,
    sample_rate=16000,
    encoder=dict(n_filters=8, dimension=64, n_residual_layers=1),
    quantizer=dict(n_codebooks=4, codebook_size=256, kmeans_iters=10),
)
