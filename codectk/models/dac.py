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

from typing import Any

from torch import nn

from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.dac_net import DACDecoder, DACEncoder
from codectk.quantization import QUANTIZERS
from codectk.registry import build_section, define_preset


@CODECS.register("dac")
class DAC(AutoencoderCodec):
    """DAC codec (generator). Defaults are the paper's 44.1 kHz, 9-codebook model.

    Args:
        sample_rate (int): audio rate in Hz.
        channels (int): audio channels (1).
        encoder (dict | None): :class:`~codectk.nn.dac_net.DACEncoder`'s arguments, over
            :attr:`ENCODER`: ``dim`` (64, width of the first conv, doubled per block),
            ``rates`` ([2, 4, 8, 8], strides; their product is the hop in samples),
            ``latent_dim`` (None: dim * 2^len(rates) = 1024; D, also the decoder's input
            and the quantizer's ``dimension``).
        decoder (dict | None): :class:`~codectk.nn.dac_net.DACDecoder`'s arguments, over
            :attr:`DECODER`: ``dim`` (1536, width of the first conv, halved per block),
            ``rates`` ([8, 8, 4, 2], strides; their product must equal the encoder's).
        quantizer (dict | None):
            :class:`~codectk.quantization.factorized_vq.FactorizedResidualVectorQuantizer`'s
            arguments, over :attr:`QUANTIZER`: ``n_codebooks`` (9, K), ``codebook_size``
            (1024 entries), ``codebook_dim`` (8, lookup dimension); ``dimension`` is the
            encoder's ``latent_dim``.
        quantizer_dropout (float): fraction of each training batch with K'_b ~ U{1..K}.

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section (naming
            ``codec_conf.<section>``).
        ValueError: mismatched encoder/decoder hops, bad strides or quantizer settings.
    """

    ENCODER = dict(dim=64, rates=[2, 4, 8, 8], latent_dim=None)
    DECODER = dict(dim=1536, rates=[8, 8, 4, 2])
    QUANTIZER = dict(n_codebooks=9, codebook_size=1024, codebook_dim=8)

    def __init__(
        self,
        sample_rate: int = 44100,
        channels: int = 1,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        quantizer_dropout: float = 0.5,
    ):
        super().__init__()
        enc = build_section(
            DACEncoder, encoder, "codec_conf.encoder", defaults=self.ENCODER, channels=channels
        )
        quant = build_section(
            QUANTIZERS.get("factorized_rvq"),
            quantizer,
            "codec_conf.quantizer",
            defaults=self.QUANTIZER,
            dimension=enc.latent_dim,
            quantizer_dropout=quantizer_dropout,
        )
        dec = build_section(
            DACDecoder,
            decoder,
            "codec_conf.decoder",
            defaults=self.DECODER,
            latent_dim=enc.latent_dim,
            channels=channels,
        )
        if enc.hop_length != dec.hop_length:
            raise ValueError(
                f"codec_conf: encoder rates {enc.rates} (hop {enc.hop_length}) and "
                f"decoder rates {dec.rates} (hop {dec.hop_length}) must have the same product"
            )
        self.assemble(sample_rate, channels, encoder=enc, quantizer=quant, decoder=dec)
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
    encoder=dict(rates=[2, 4, 8, 8]),
    decoder=dict(rates=[8, 8, 4, 2]),
)


dac_tiny_conf = define_preset(
    DAC,
    "dac_tiny_conf",
    """``codec_conf`` of a toy DAC for tests and the CPU demo.

    16 kHz, strides (2, 4, 5, 8) -> hop 320 (50 Hz), encoder width 4 (latent 64),
    decoder width 64, 4 codebooks of 256 entries in 8 dimensions (1.6 kbps).""",
    base=dac_44khz_conf,
    sample_rate=16000,
    encoder=dict(dim=4, rates=[2, 4, 5, 8]),
    decoder=dict(dim=64, rates=[8, 5, 4, 2]),
    quantizer=dict(n_codebooks=4, codebook_size=256),
)
