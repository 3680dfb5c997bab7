"""DAC: the improved RVQGAN codec of Descript (snake convnet + factorized RVQ).

Kumar, Seetharaman, Luebs, Kumar, Kumar, "High-Fidelity Audio Compression with Improved
RVQGAN" (DAC), NeurIPS 2023 (arXiv 2306.06546):

* Encoder/decoder (§3.1): :mod:`codectk.nn.dac_net`, snake activations (eq. 1,
  :mod:`codectk.nn.snake`), weight-normalised non-causal convolutions, encoder width 64
  doubling per block (latent D = 1024), decoder width 1536 halving per block, tanh out.
* Quantizer (§3.2): :class:`~codectk.quantization.factorized_vq.FactorizedResidualVectorQuantizer`,
  1024-entry codebooks looked up in 8 dimensions after L2 normalisation, trained with
  codebook + commitment losses (no EMA), quantizer dropout with p = 0.5.
* Published models (the authors' ``conf/final/*.yml``): 44.1 kHz with strides
  (2, 4, 8, 8) -> hop 512 (86.13 Hz) and 9 codebooks (7.75 kbps, "8 kbps"); 24 kHz and
  16 kHz with strides (2, 4, 5, 8) -> hop 320 (75 Hz / 50 Hz) and 32 codebooks (24 kbps)
  or 12 codebooks (6 kbps).

Initialisation as the authors' ``init_weights``: Conv1d biases are zeroed. (Their
truncated-normal init of ``weight`` does not reach weight-normalised layers, whose weight
is recomputed from g and v at every forward, so it is not repeated here.)

The discriminator (MPD + multi-band MRD) is :mod:`codectk.discriminators.mrd` and the
objective is the ``dac`` loss (:mod:`codectk.losses.dac_loss`).
"""

from __future__ import annotations

from torch import nn

from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.dac_net import DACDecoder, DACEncoder
from codectk.quantization import QUANTIZERS
from codectk.registry import define_preset


@CODECS.register("dac")
class DAC(AutoencoderCodec):
    """DAC codec (generator). Defaults are the paper's 44.1 kHz, 9-codebook model.

    Args:
        sample_rate (int): audio rate in Hz.
        channels (int): audio channels (1).
        encoder_dim (int): width of the encoder's first conv (doubled per block).
        encoder_rates (list[int] | None): encoder strides (None: [2, 4, 8, 8]).
        latent_dim (int | None): D (None: encoder_dim * 2^len(encoder_rates), as DAC).
        decoder_dim (int): width of the decoder's first conv (halved per block).
        decoder_rates (list[int] | None): decoder strides (None: [8, 8, 4, 2]); their
            product must equal the encoder's.
        n_codebooks (int): K.
        codebook_size (int): entries per codebook.
        codebook_dim (int): lookup dimension of the factorized codebooks.
        quantizer_dropout (float): fraction of each training batch with K'_b ~ U{1..K}.

    Raises:
        ValueError: mismatched encoder/decoder hops, bad strides or quantizer settings.
    """

    def __init__(
        self,
        sample_rate: int = 44100,
        channels: int = 1,
        encoder_dim: int = 64,
        encoder_rates: list[int] | None = None,
        latent_dim: int | None = None,
        decoder_dim: int = 1536,
        decoder_rates: list[int] | None = None,
        n_codebooks: int = 9,
        codebook_size: int = 1024,
        codebook_dim: int = 8,
        quantizer_dropout: float = 0.5,
    ):
        super().__init__()
        encoder_rates = [2, 4, 8, 8] if encoder_rates is None else encoder_rates
        decoder_rates = [8, 8, 4, 2] if decoder_rates is None else decoder_rates
        if latent_dim is None:
            latent_dim = encoder_dim * 2 ** len(encoder_rates)
        encoder = DACEncoder(encoder_dim, encoder_rates, latent_dim, channels)
        quantizer = QUANTIZERS.build(
            "factorized_rvq",
            dict(
                dimension=latent_dim,
                n_codebooks=n_codebooks,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                quantizer_dropout=quantizer_dropout,
            ),
        )
        decoder = DACDecoder(latent_dim, decoder_dim, decoder_rates, channels)
        if encoder.hop_length != decoder.hop_length:
            raise ValueError(
                f"encoder_rates {encoder_rates} (hop {encoder.hop_length}) and "
                f"decoder_rates {decoder_rates} (hop {decoder.hop_length}) must have "
                "the same product"
            )
        self.assemble(sample_rate, channels, encoder=encoder, quantizer=quantizer, decoder=decoder)
        for m in self.modules():
            if isinstance(m, nn.Conv1d) and m.bias is not None:
                nn.init.zeros_(m.bias)  # the authors' init_weights

    def output_extras(self, q) -> dict:
        """``n_quantizers_per_example`` (B,): DAC's quantizer dropout is per example."""
        return {"n_quantizers_per_example": q.per_example}


dac_44khz_conf = define_preset(
    DAC,
    "dac_44khz_conf",
    """``codec_conf`` of the released 44.1 kHz model (the class defaults): hop 512,
    9 x 1024 codebooks.""",
    encoder_rates=[2, 4, 8, 8],
    decoder_rates=[8, 8, 4, 2],
)


dac_tiny_conf = define_preset(
    DAC,
    "dac_tiny_conf",
    """``codec_conf`` of a toy DAC for tests and the CPU demo.

    16 kHz, strides (2, 4, 5, 8) -> hop 320 (50 Hz), encoder width 4 (latent 64),
    decoder width 64, 4 codebooks of 256 entries in 8 dimensions (1.6 kbps).""",
    base=dac_44khz_conf,
    sample_rate=16000,
    encoder_dim=4,
    encoder_rates=[2, 4, 5, 8],
    decoder_dim=64,
    decoder_rates=[8, 5, 4, 2],
    n_codebooks=4,
    codebook_size=256,
)
