"""EnCodec: SEANet encoder/decoder with LSTM around an EMA residual vector quantiser.

Défossez, Copet, Synnaeve, Adi, "High Fidelity Neural Audio Compression", TMLR 2023
(arXiv 2210.13438):

* Encoder/decoder (§3.1): SEANet (:mod:`codectk.nn.seanet`) with C = 32 channels, strides
  (2, 4, 5, 8), one residual unit per block (kernel 3, hidden C/2, 1x1-conv skip), a
  two-layer LSTM at the bottleneck, ELU, D = 128, weight norm; causal at 24 kHz (left
  padding, reflected as the released model's ``causal_pad_mode``), non-causal with
  reflect padding and time-wise group norm at 48 kHz.
* Residual vector quantisation (§3.2): 1024-entry EMA codebooks (k-means init, dead-code
  replacement, commitment loss), hop 320 -> 75 Hz at 24 kHz, 10 bits per codebook, so
  2/4/8/16/32 codebooks give 1.5/3/6/12/24 kbps; at 48 kHz (150 Hz) 2/4/8/16 codebooks
  give 3/6/12/24 kbps. One model serves every bandwidth: in training each batch uses the
  codebooks of a bandwidth drawn uniformly from ``target_bandwidths`` (§3.2, "variable
  bandwidth"; the authors' training code, audiocraft 1.3.0, draws K' uniformly in 1..K
  instead: ``n_quantizers_sampling="uniform"``); at decoding
  ``n_quantizers_for_bandwidth(kbps)`` selects them.
* Losses (§3.4) are the ``encodec`` loss (:mod:`codectk.losses.encodec_loss`) with the
  loss balancer; the discriminator is ``ms_stft``.

The class defaults are codectk's quantizer; ``conf/encodec_*.yaml`` set the options that
make it train as audiocraft's (``quantizer: {detach_residual, ema_init, dead_code}``,
``n_quantizers_sampling``; docs/parity.md).

Parameter count of the 24 kHz model as the authors' ``EncodecModel`` counts it
(encoder + decoder; the codebooks are buffers): 14,851,810.
"""

from __future__ import annotations

from typing import Any

from codectk.errors import check_choice
from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder, seanet_sections
from codectk.quantization import QUANTIZERS, QuantizerDropout
from codectk.registry import build_section, define_preset

N_QUANTIZERS_SAMPLING = ("targets", "uniform")


@CODECS.register("encodec")
class EnCodec(AutoencoderCodec):
    """EnCodec codec (generator). Defaults are the paper's causal 24 kHz model.

    ``codec_conf`` has three sections, each merged key by key over the class's defaults
    (:attr:`ENCODER`, :attr:`DECODER`, :attr:`QUANTIZER`), and top-level options.

    ``encoder``: the SEANet config the encoder and decoder share (every
    :class:`~codectk.nn.seanet.SEANetConfig` field but ``channels``; defaults
    :attr:`ENCODER`):

    * ``n_filters`` (32): base channels C; ``dimension`` (128): latent dimension D, also
      the quantizer's;
    * ``ratios`` ([8, 5, 4, 2]): strides in decoder order (hop 320 samples);
    * ``n_residual_layers`` (1): residual units per block, dilations ``dilation_base ** j``
      (``dilation_base`` 2);
    * ``kernel_size`` (7): first conv; ``residual_kernel_size`` (3): the units' dilated
      convs; ``last_kernel_size`` (7): the encoder's projection to D and the decoder's
      output conv;
    * ``activation`` ("elu"); ``lstm`` (2): LSTM layers at the bottleneck;
      ``compress`` (2): channel reduction inside residual units; ``true_skip`` (False):
      identity skips (EnCodec: 1x1 convs);
    * ``causal`` (True): causal convolutions (the 24 kHz model) or not (48 kHz);
      ``norm`` ("weight_norm"): "weight_norm" (24 kHz), "time_group_norm" (48 kHz,
      non-causal only) or "none"; ``pad_mode`` ("reflect"): padding of non-causal convs;
    * ``causal_pad_mode`` ("reflect"): left padding of causal convs. "reflect" is what the
      authors' implementation does (their causal convs pad with ``pad_mode``), so their
      released weights give the same output only with it; the first frames then see up
      to ``kernel - stride`` future samples. "constant" (zeros) is strictly causal;
    * ``trim_right_ratio`` (1.0): see :class:`~codectk.nn.seanet.SEANetConfig`.

    ``decoder``: the decoder's differences from ``encoder`` (fields of the same config;
    default none; a null value keeps the encoder's), e.g. SoundStream's
    ``last_kernel_size: 7`` against the encoder's 3.

    ``quantizer``: arguments of the ``rvq`` quantizer
    (:class:`~codectk.quantization.rvq.ResidualVectorQuantizer`) but ``dimension`` (the
    encoder's) and its dropout (the top-level options below); defaults :attr:`QUANTIZER`:

    * ``n_codebooks`` (32): K, the most codebooks; ``codebook_size`` (1024): entries per
      codebook; ``codebook_dim`` (None): codeword size (None: D, no projection);
    * ``decay`` (0.99): EMA decay of the codebooks; ``epsilon`` (1e-5): Laplace smoothing;
    * ``kmeans_init`` (True): k-means initialisation on the first training batch, with
      ``kmeans_iters`` (50) iterations; ``threshold_ema_dead_code`` (2.0): dead-code
      replacement threshold (0: never); ``random_init`` ("kaiming_uniform");
    * ``detach_residual`` (False): the residual quantiser subtracts detached stage
      outputs (audiocraft ``core_vq.py:372-382``; see :mod:`codectk.quantization.rvq`);
    * ``ema_init`` ("weighted") or "unweighted" (audiocraft's) codebook EMA state;
      ``dead_code`` ("reset") or "before_ema" (audiocraft's) dead-code replacement (see
      :class:`codectk.quantization.vq.EuclideanCodebook`).

    Args:
        sample_rate (int): audio rate in Hz.
        channels (int): audio channels (1 mono; the paper's 48 kHz model is stereo).
        encoder (dict | None): the ``encoder`` section (above).
        decoder (dict | None): the ``decoder`` section (above).
        quantizer (dict | None): the ``quantizer`` section (above).
        target_bandwidths (list[float] | None): kbps the model is trained for with
            ``n_quantizers_sampling: targets`` (None: the paper's [1.5, 3, 6, 12, 24]; with
            "uniform" None means none); each must be a bitrate of 1..K codebooks.
        quantizer_dropout (float): probability that a training batch uses fewer than all
            K codebooks, K' drawn as ``n_quantizers_sampling`` says.
        n_quantizers_sampling (str): "targets" (the paper, §3.2: the codebooks of a
            bandwidth drawn uniformly from ``target_bandwidths``) or "uniform" (the
            authors' training code: K' uniform in 1..K, audiocraft
            ``quantization/vq.py:78-79``).
        quantizer_dropout_coin (str): "uncertain" (audiocraft: the probability coin is not
            tossed when ``quantizer_dropout`` is 1) or "always" (tossed on every batch,
            drawing one more random number: SoundStream's draws, kept so that its
            checkpoints resume to the same weights).

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section, naming
            it (``codec_conf.quantizer: unknown key(s) [...]``).
        ValueError: for a bad norm, strides, channels, or a target bandwidth that no
            number of codebooks gives (naming the valid ones).
    """

    ENCODER: dict[str, Any] = dict(ratios=[8, 5, 4, 2], causal=True, causal_pad_mode="reflect")
    """The ``encoder`` section's defaults: the paper's causal 24 kHz SEANet."""
    DECODER: dict[str, Any] = {}
    """The ``decoder`` section's defaults: none (the decoder mirrors the encoder)."""
    QUANTIZER: dict[str, Any] = dict(n_codebooks=32, kmeans_iters=50)
    """The ``quantizer`` section's defaults: 32 x 1024 EMA codebooks (1.5-24 kbps)."""

    def __init__(
        self,
        sample_rate: int = 24000,
        channels: int = 1,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        target_bandwidths: list[float] | None = None,
        quantizer_dropout: float = 1.0,
        n_quantizers_sampling: str = "targets",
        quantizer_dropout_coin: str = "uncertain",
    ):
        super().__init__()
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout {quantizer_dropout} must lie in [0, 1]")
        check_choice("n_quantizers_sampling", n_quantizers_sampling, N_QUANTIZERS_SAMPLING)
        enc, dec = seanet_sections(channels, encoder, decoder, self.ENCODER, self.DECODER)
        encoder_net, decoder_net = SEANetEncoder(enc), SEANetDecoder(dec)
        # the quantizer's dropout is the codec's (set below), not the section's
        quantizer_net = build_section(
            QUANTIZERS.get("rvq"),
            quantizer,
            "codec_conf.quantizer",
            defaults=self.QUANTIZER,
            dimension=enc.dimension,
            quantizer_dropout=0.0,
            dropout=None,
        )
        self.assemble(
            sample_rate,
            channels,
            encoder=encoder_net,
            decoder=decoder_net,
            quantizer=quantizer_net,
        )
        self.quantizer_dropout = quantizer_dropout
        self.n_quantizers_sampling = n_quantizers_sampling
        bws = target_bandwidths
        if bws is None:  # the paper's; "uniform" draws need none
            bws = [] if n_quantizers_sampling == "uniform" else [1.5, 3.0, 6.0, 12.0, 24.0]
        elif not bws:
            raise ValueError("target_bandwidths must not be empty")
        self.target_bandwidths = [float(b) for b in bws]
        self.target_n_quantizers = [self.n_quantizers_for_bandwidth(b) for b in bws]
        # Variable-bandwidth training: with probability quantizer_dropout (the coin is not
        # tossed when it is 1, unless quantizer_dropout_coin says "always"), K' is the codebook count of a bandwidth drawn uniformly
        # from target_bandwidths ("targets") or uniform in 1..K ("uniform": audiocraft's
        # torch.randint(1, K + 1)); else all K (codectk.quantization.dropout).
        targets = None if n_quantizers_sampling == "uniform" else self.target_n_quantizers
        dropout = QuantizerDropout(quantizer_dropout, targets, coin=quantizer_dropout_coin)
        self.quantizer.set_dropout_(dropout)


encodec_24khz_conf = define_preset(
    EnCodec,
    "encodec_24khz_conf",
    """``codec_conf`` of the released causal 24 kHz model (the class defaults): 32 x 1024
    codebooks, 1.5-24 kbps.""",
    encoder=dict(ratios=[8, 5, 4, 2]),
    target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
)


encodec_tiny_conf = define_preset(
    EnCodec,
    "encodec_tiny_conf",
    """``codec_conf`` of a toy EnCodec for tests and the CPU demo.

    16 kHz, hop 320 (50 Hz), C = 4, D = 32, one LSTM layer, 4 codebooks of 256 entries
    (8 bits x 50 Hz = 0.4 kbps each), trained at 0.8 and 1.6 kbps.""",
    base=encodec_24khz_conf,
    sample_rate=16000,
    encoder=dict(n_filters=4, dimension=32, lstm=1),
    quantizer=dict(n_codebooks=4, codebook_size=256, kmeans_iters=10),
    target_bandwidths=[0.8, 1.6],
)
