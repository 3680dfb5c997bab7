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

The adversarial and reconstruction losses (§III-D) live in :mod:`codectk.losses` and
:mod:`codectk.discriminators`; this module is the generator.
"""

from __future__ import annotations

from typing import Any

from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from codectk.quantization import QUANTIZERS
from codectk.registry import from_arguments, preset


@CODECS.register("soundstream")
class SoundStream(AutoencoderCodec):
    """SoundStream codec (generator). Defaults are the paper's 24 kHz, 6 kbps model.

    Args:
        sample_rate (int): audio rate in Hz.
        channels (int): audio channels (1).
        n_filters (int): base channels C of encoder and decoder.
        dimension (int): latent dimension D.
        ratios (list[int] | None): strides in decoder order; the encoder uses them
            reversed. None gives [8, 5, 4, 2] (hop 320).
        n_residual_layers (int): residual units per block.
        dilation_base (int): residual unit j has dilation ``dilation_base ** j``.
        kernel_size (int): kernel of the first encoder and decoder convolutions.
        residual_kernel_size (int): kernel of the dilated residual convolutions.
        last_kernel_size (int): kernel of the encoder's projection to D.
        decoder_last_kernel_size (int): kernel of the decoder's output convolution.
        activation (str): activation name ("elu", "gelu", "leaky_relu", ...).
        causal (bool): causal (streamable) convolutions.
        lstm (int): LSTM layers at the bottleneck of encoder and decoder (0: none).
        n_codebooks (int): K, the most codebooks.
        codebook_size (int): entries per codebook.
        codebook_dim (int | None): codeword size (None: D, no projection).
        ema_decay (float): EMA decay of the codebooks.
        kmeans_init (bool): k-means initialisation of the codebooks on the first batch.
        kmeans_iters (int): k-means iterations.
        threshold_ema_dead_code (float): codewords with EMA usage below this many frames per
            batch are replaced by batch frames (0: never).
        quantizer_dropout (float): probability that a training batch uses K' ~ U{1..K}
            codebooks instead of all K.

    Raises:
        ValueError: for bad ``ratios``, ``channels``, activation or quantizer settings.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        channels: int = 1,
        n_filters: int = 32,
        dimension: int = 512,
        ratios: list[int] | None = None,
        n_residual_layers: int = 3,
        dilation_base: int = 3,
        kernel_size: int = 7,
        residual_kernel_size: int = 7,
        last_kernel_size: int = 3,
        decoder_last_kernel_size: int = 7,
        activation: str = "elu",
        causal: bool = True,
        lstm: int = 0,
        n_codebooks: int = 8,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        ema_decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: float = 2.0,
        quantizer_dropout: float = 1.0,
    ):
        super().__init__()
        # residual units keep N channels and skip by identity (Fig. 2)
        seanet = from_arguments(SEANetConfig, locals(), compress=1, true_skip=True)
        encoder = SEANetEncoder(seanet)
        decoder = SEANetDecoder(seanet, last_kernel_size=decoder_last_kernel_size)
        quantizer = QUANTIZERS.build(
            "rvq",
            dict(
                dimension=dimension,
                n_codebooks=n_codebooks,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                decay=ema_decay,
                kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters,
                threshold_ema_dead_code=threshold_ema_dead_code,
                quantizer_dropout=quantizer_dropout,
            ),
        )
        self.assemble(sample_rate, channels, encoder=encoder, decoder=decoder, quantizer=quantizer)


def soundstream_24khz_conf() -> dict[str, Any]:
    """``codec_conf`` of the paper's 24 kHz model (the class defaults): 8 x 1024
    codebooks, 75 Hz, 0.75-6 kbps.

    Returns:
        dict[str, Any]: keyword arguments of :class:`SoundStream` (a fresh dict).
    """
    return preset(SoundStream, "soundstream_24khz_conf", ratios=[8, 5, 4, 2])


def soundstream_tiny_conf(**overrides: Any) -> dict[str, Any]:
    """``codec_conf`` of a toy SoundStream for tests and the CPU demo.

    16 kHz, hop 320 (50 Hz), C = 8, D = 64, 4 codebooks of 256 entries (1.6 kbps), one
    residual unit per block (the paper's three, dilations 1, 3, 9, cost about 2.5x more:
    pass ``n_residual_layers=3``).

    Args:
        **overrides: replacement values for any :class:`SoundStream` argument.

    Returns:
        dict[str, Any]: keyword arguments of :class:`SoundStream`.

    Raises:
        ConfigError: for an override that is not a :class:`SoundStream` argument or has
            the wrong type.
    """
    return preset(
        SoundStream,
        "soundstream_tiny_conf",
        base=soundstream_24khz_conf(),
        overrides=overrides,
        sample_rate=16000,
        n_filters=8,
        dimension=64,
        n_residual_layers=1,
        n_codebooks=4,
        codebook_size=256,
        kmeans_iters=10,
    )
