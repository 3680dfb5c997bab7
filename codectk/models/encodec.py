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
make it train as audiocraft's (``detach_residual``, ``ema_init``, ``dead_code``,
``n_quantizers_sampling``; docs/parity.md).

Parameter count of the 24 kHz model as the authors' ``EncodecModel`` counts it
(encoder + decoder; the codebooks are buffers): 14,851,810.
"""

from __future__ import annotations

from codectk.errors import check_choice
from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from codectk.quantization import QUANTIZERS, QuantizerDropout
from codectk.registry import define_preset, from_arguments

N_QUANTIZERS_SAMPLING = ("targets", "uniform")


@CODECS.register("encodec")
class EnCodec(AutoencoderCodec):
    """EnCodec codec (generator). Defaults are the paper's causal 24 kHz model.

    Args:
        sample_rate (int): audio rate in Hz.
        channels (int): audio channels (1 mono; the paper's 48 kHz model is stereo).
        n_filters (int): base channels C.
        dimension (int): latent dimension D.
        ratios (list[int] | None): strides in decoder order (None: [8, 5, 4, 2]).
        n_residual_layers (int): residual units per block.
        dilation_base (int): unit j has dilation ``dilation_base ** j``.
        kernel_size (int): kernel of the first encoder and decoder convs.
        residual_kernel_size (int): kernel of the residual units' dilated convs.
        last_kernel_size (int): kernel of the encoder's projection to D and of the
            decoder's output conv.
        decoder_last_kernel_size (int | None): kernel of the decoder's output conv when it
            differs (SoundStream: 7 against the encoder's 3; None: ``last_kernel_size``).
        activation (str): activation name.
        causal (bool): causal convolutions (the 24 kHz model) or not (48 kHz).
        norm (str): "weight_norm" (24 kHz), "time_group_norm" (48 kHz, non-causal only)
            or "none".
        pad_mode (str): padding of non-causal convolutions ("reflect" as EnCodec).
        causal_pad_mode (str): left padding of causal convolutions. "reflect" is what the
            authors' implementation does (their causal convs pad with ``pad_mode``), so
            their released weights give the same output only with it; the first frames
            then see up to ``kernel - stride`` future samples. "constant" (zeros) is
            strictly causal.
        lstm (int): LSTM layers at the bottleneck.
        compress (int): channel reduction inside residual units.
        true_skip (bool): identity skips (EnCodec: 1x1 convs).
        n_codebooks (int): K, the most codebooks.
        codebook_size (int): entries per codebook.
        codebook_dim (int | None): codeword size (None: D, no projection).
        ema_decay (float): EMA decay of the codebooks.
        kmeans_init (bool): k-means initialisation on the first training batch.
        kmeans_iters (int): k-means iterations.
        threshold_ema_dead_code (float): dead-code replacement threshold (0: never).
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
        detach_residual (bool): the residual quantiser subtracts detached stage outputs
            (audiocraft ``core_vq.py:372-382``; see :mod:`codectk.quantization.rvq`).
        ema_init (str): "weighted" or "unweighted" (audiocraft's) codebook EMA state.
        dead_code (str): "reset" or "before_ema" (audiocraft's) dead-code replacement
            (see :class:`codectk.quantization.vq.EuclideanCodebook`).

    Raises:
        ValueError: for a bad norm, strides, channels, or a target bandwidth that no
            number of codebooks gives (naming the valid ones).
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        channels: int = 1,
        n_filters: int = 32,
        dimension: int = 128,
        ratios: list[int] | None = None,
        n_residual_layers: int = 1,
        dilation_base: int = 2,
        kernel_size: int = 7,
        residual_kernel_size: int = 3,
        last_kernel_size: int = 7,
        decoder_last_kernel_size: int | None = None,
        activation: str = "elu",
        causal: bool = True,
        norm: str = "weight_norm",
        pad_mode: str = "reflect",
        causal_pad_mode: str = "reflect",
        lstm: int = 2,
        compress: int = 2,
        true_skip: bool = False,
        n_codebooks: int = 32,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        ema_decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: float = 2.0,
        target_bandwidths: list[float] | None = None,
        quantizer_dropout: float = 1.0,
        n_quantizers_sampling: str = "targets",
        quantizer_dropout_coin: str = "uncertain",
        detach_residual: bool = False,
        ema_init: str = "weighted",
        dead_code: str = "reset",
    ):
        super().__init__()
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout {quantizer_dropout} must lie in [0, 1]")
        check_choice("n_quantizers_sampling", n_quantizers_sampling, N_QUANTIZERS_SAMPLING)
        seanet = from_arguments(SEANetConfig, locals())
        encoder = SEANetEncoder(seanet)
        last = (
            {}
            if decoder_last_kernel_size is None
            else {"last_kernel_size": decoder_last_kernel_size}
        )
        decoder = SEANetDecoder(seanet, **last)
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
                ema_init=ema_init,
                dead_code=dead_code,
                detach_residual=detach_residual,
            ),
        )
        self.assemble(sample_rate, channels, encoder=encoder, decoder=decoder, quantizer=quantizer)
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
    ratios=[8, 5, 4, 2],
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
    n_filters=4,
    dimension=32,
    lstm=1,
    n_codebooks=4,
    codebook_size=256,
    kmeans_iters=10,
    target_bandwidths=[0.8, 1.6],
)
