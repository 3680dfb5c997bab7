"""FreqCodec: FunCodec's frequency-domain codec (STFT in, 2-D SEANet, RVQ, iSTFT out).

Du, Zhang, Hu, Zheng, "FunCodec: A Fundamental, Reproducible and Integrable Open-source
Toolkit for Neural Speech Codec", ICASSP 2024 (arXiv 2309.07405), frequency-domain models;
released as ``funcodec/models/codec_freq.py`` with the LibriTTS recipe configs
``freqcodec_mag_phase_16k_n32_600k_step.yaml`` / ``freqcodec_mag_angle_...``:

* Domain transform: STFT (512-point Hann window, hop 160 = 10 ms at 16 kHz, 257 bins).
  ``mag_phase`` input: [log|X|, Re(X / |X|), Im(X / |X|)] (3 channels);
  ``mag_angle``: [log|X|, angle(X)] (2 channels); log|X| floored at 1e-6.
* Encoder: :class:`~codectk.nn.seanet2d.SEANet2dEncoder` with C = 32, (freq, time) strides
  [[4, 1], [4, 1], [4, 2], [4, 1]] (decoder order; bins 257 -> 64 -> 16 -> 4 -> 1, frames
  / 2), one residual unit per stage (3 x 3, dilation 1), GroupNorm(1) after every conv,
  ELU, a 2-layer LSTM and a Conv1d to D = 128. Frames: 160 * 2 = 320 samples, 50 Hz.
* RVQ: 32 codebooks x 1024 entries (EMA, k-means init, dead-code replacement): 16 kbps.
* Structured quantizer dropout (FunCodec ``quantize_dropout`` + ``rand_num_quant``): every
  training batch uses the first K' codebooks with K' drawn uniformly from a fixed set,
  [1, 2, 4, 8, 16, 32], rather than from 1..K, so one model serves 0.5, 1, 2, 4, 8 and
  16 kbps and the code space is trained at exactly those operating points.
* Decoder mirrors the encoder and predicts the same channels; the spectrum is
  softplus(m) * (p_re + i p_im) (``mag_phase``) or softplus(m) * exp(i pi sin(a))
  (``mag_angle``), inverted by the iSTFT.

Changed for codectk: (1) the STFT uses "same" padding (:class:`~codectk.nn.stft.SameSTFT`:
T / 160 frames instead of torchaudio's centred T / 160 + 1), so F = T / 320 code frames
decode to exactly F * 320 samples; (2) no per-utterance RMS normalisation
(``audio_normalize``): its scale is side information that codectk's code files do not
carry. FunCodec's extra ``enc_quant_loss`` (squared MSE of z_q vs z) is left out: with
the straight-through z_q its gradient is zero. Training losses: ``loss: funcodec``
(:mod:`codectk.losses.funcodec_loss`); docs/parity.md says what was compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from codectk.errors import check_choice
from codectk.models.base import CODECS, AutoencoderCodec, CodecOutput
from codectk.nn.seanet2d import SEANet2dConfig, SEANet2dDecoder, SEANet2dEncoder
from codectk.nn.stft import SameSTFT
from codectk.quantization import QUANTIZERS, QuantizerDropout
from codectk.registry import build_section, define_preset, merge_sections

_EPS = 1e-6
COMMITMENT_AVERAGES = ("used", "all")


@dataclass(frozen=True)
class SpectralDomain:
    """How a complex spectrum becomes network channels and back.

    Attributes:
        channels (int): feature channels C.
        analyse (Callable): complex (B, N, M) -> features (B, C, N, M).
        synthesise (Callable): network output (B, C, N, M) -> complex (B, N, M).
    """

    channels: int
    analyse: Callable[[Tensor], Tensor]
    synthesise: Callable[[Tensor], Tensor]


def _log_mag(spec: Tensor) -> Tensor:
    return torch.log(spec.abs().clamp(min=_EPS))


def _mag_phase_features(spec: Tensor) -> Tensor:
    phase = spec / spec.abs().clamp(min=_EPS)
    return torch.stack([_log_mag(spec), phase.real, phase.imag], dim=1)  # (B, 3, N, M)


def _mag_phase_spectrum(out: Tensor) -> Tensor:
    return F.softplus(out[:, 0]) * torch.complex(out[:, 1], out[:, 2])


def _mag_angle_features(spec: Tensor) -> Tensor:
    return torch.stack([_log_mag(spec), spec.angle()], dim=1)  # (B, 2, N, M)


def _mag_angle_spectrum(out: Tensor) -> Tensor:
    return torch.polar(F.softplus(out[:, 0]), torch.sin(out[:, 1]) * math.pi)


DOMAINS: dict[str, SpectralDomain] = {
    "mag_phase": SpectralDomain(3, _mag_phase_features, _mag_phase_spectrum),
    "mag_angle": SpectralDomain(2, _mag_angle_features, _mag_angle_spectrum),
}


@CODECS.register("freqcodec")
class FreqCodec(AutoencoderCodec):
    """FunCodec's FreqCodec (generator). Defaults are the 16 kHz mag/phase recipe model.

    Args:
        sample_rate (int): audio rate in Hz.
        n_fft (int): STFT size in samples (N = n_fft / 2 + 1 bins).
        stft_hop_length (int): STFT hop in samples; hop_length = it * prod(time strides).
        input_mode (str): "mag_phase" or "mag_angle" (see module doc).
        dimension (int): latent dimension D (encoder output, codeword and decoder input).
        encoder (dict | None): the 2-D SEANet's settings, shared by encoder and decoder:
            the fields of :class:`~codectk.nn.seanet2d.SEANet2dConfig` but ``n_freq`` and
            ``dimension`` (derived); unset keys keep :attr:`ENCODER`: ``n_filters`` 32
            (base channels C), ``ratios`` [[4, 1], [4, 1], [4, 2], [4, 1]] ((freq, time)
            strides in decoder order; they must reduce N bins to 1), ``n_residual_layers``
            1, ``dilation_base`` 1, ``kernel_size`` 7, ``residual_kernel_size`` 3,
            ``last_kernel_size`` 7, ``activation`` "elu", ``norm`` "time_group_norm",
            ``pad_mode`` "reflect", ``lstm`` 2 (LSTM layers, 0: none), ``compress`` 2,
            ``true_skip`` False, ``conv_group_ratio`` -1 (FunCodec "grN" grouped
            residual/strided convs; <= 0: dense), ``tr_conv_group_ratio`` -1 (grouped
            transposed convs).
        decoder (dict | None): the decoder's differences from ``encoder`` (fields of the
            same config; default none).
        quantizer (dict | None): arguments of the RVQ
            (:class:`~codectk.quantization.rvq.ResidualVectorQuantizer`, which documents
            them) but ``dimension`` and the dropout (derived); unset keys keep
            :attr:`QUANTIZER`: ``n_codebooks`` 32 (K), ``codebook_size`` 1024,
            ``codebook_dim`` None (D), ``decay`` 0.99 (EMA), ``kmeans_init`` True,
            ``kmeans_iters`` 50, ``threshold_ema_dead_code`` 2.0 (0: never), ``ema_init``
            "weighted" and ``dead_code`` "reset" (FunCodec: "unweighted", "before_ema"; see
            :class:`~codectk.quantization.vq.EuclideanCodebook`).
        quantizer_dropout_choices (list[int] | None): structured quantizer dropout: the
            K' values a training batch draws from uniformly (None: always all K).
        commitment_average (str): "used" averages the commitment loss over the K'
            codebooks of the batch; "all" over all K, the dropped ones counting 0, as
            FunCodec (``penalty = mean(commit_loss)`` over its K stages,
            ``funcodec/modules/quantization/vq.py:101``), i.e. the "used" value x K' / K.

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section, naming it
            (``codec_conf.encoder``, ``codec_conf.decoder``, ``codec_conf.quantizer``).
        ValueError: for an unknown ``input_mode``, ``norm`` or ``commitment_average``, STFT
            sizes, strides that do not reduce the bins to 1, decoder strides of another
            hop, or dropout choices outside 1..K.
    """

    ENCODER: ClassVar[dict[str, Any]] = dict(n_filters=32, ratios=[[4, 1], [4, 1], [4, 2], [4, 1]])
    QUANTIZER: ClassVar[dict[str, Any]] = dict(n_codebooks=32, kmeans_iters=50)

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        stft_hop_length: int = 160,
        input_mode: str = "mag_phase",
        dimension: int = 128,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        quantizer_dropout_choices: list[int] | None = None,
        commitment_average: str = "used",
    ):
        super().__init__()
        check_choice("commitment_average", commitment_average, COMMITMENT_AVERAGES)
        check_choice("input_mode", input_mode, DOMAINS)
        self.domain = DOMAINS[input_mode]
        self.input_mode = input_mode
        self.stft = SameSTFT(n_fft, stft_hop_length)
        derived = dict(n_freq=self.stft.n_freq, dimension=dimension)
        enc = merge_sections(self.ENCODER, encoder)
        net = build_section(SEANet2dConfig, enc, "codec_conf.encoder", **derived)
        hop_length = stft_hop_length * math.prod(r[1] for r in net.ratios)
        encoder_net = SEANet2dEncoder(self.domain.channels, net)
        if decoder:  # the decoder's differences
            net = build_section(SEANet2dConfig, decoder, "codec_conf.decoder", enc, **derived)
            if stft_hop_length * math.prod(r[1] for r in net.ratios) != hop_length:
                raise ValueError(
                    f"codec_conf.decoder: ratios {decoder.get('ratios')} must keep the "
                    f"encoder's hop of {hop_length} samples"
                )
        quantizer = merge_sections(self.QUANTIZER, quantizer)
        n_codebooks = quantizer["n_codebooks"]
        choices = list(quantizer_dropout_choices or [])
        if any(not 1 <= n <= n_codebooks for n in choices):
            raise ValueError(
                f"quantizer_dropout_choices {choices} must lie in 1..n_codebooks ({n_codebooks})"
            )
        # structured dropout: K' uniform over the choices in every training batch (FunCodec)
        dropout = QuantizerDropout(1.0, choices, coin="uncertain") if choices else None
        rvq = build_section(
            QUANTIZERS.get("rvq"),
            quantizer,
            "codec_conf.quantizer",
            dimension=dimension,
            quantizer_dropout=0.0,
            dropout=dropout,
        )
        decoder_net = SEANet2dDecoder(self.domain.channels, net)
        self.quantizer_dropout_choices = choices
        self.commitment_average = commitment_average
        self.assemble(
            sample_rate,
            hop_length=hop_length,
            encoder=encoder_net,
            quantizer=rvq,
            decoder=decoder_net,
        )

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """See :meth:`AutoencoderCodec.forward`; with ``commitment_average: all`` the
        commitment loss is averaged over all K codebooks (dropped ones count 0)."""
        out = super().forward(wav, n_quantizers)
        if self.commitment_average == "all":
            out.commitment_loss = out.commitment_loss * (out.n_quantizers / self.n_codebooks)
        return out

    def latent(self, wav: Tensor) -> Tensor:
        """(B, 1, T) -> latent (B, D, ceil(T / hop_length)); T is right-padded with zeros."""
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"wav must be (B, 1, T), got {tuple(wav.shape)}")
        extra = -wav.shape[-1] % self.hop_length
        wav = F.pad(wav, (0, extra)) if extra else wav
        with torch.autocast(wav.device.type, enabled=False):  # STFT features in fp32
            spec = self.stft.stft(wav[:, 0].float())  # (B, N, M)
            feats = self.domain.analyse(spec)  # (B, C, N, M)
        return self.encoder(feats)

    def synthesise(self, z_q: Tensor) -> Tensor:
        """Latent (B, D, F) -> waveform (B, 1, F * hop_length)."""
        out = self.decoder(z_q)  # (B, C, N, M)
        with torch.autocast(out.device.type, enabled=False):
            wav = self.stft.istft(self.domain.synthesise(out.float()))  # (B, M * stft_hop)
        return wav[:, None]  # (B, T) -> (B, 1, T)


freqcodec_16k_conf = define_preset(
    FreqCodec,
    "freqcodec_16k_conf",
    """``codec_conf`` of FunCodec's ``freqcodec_mag_phase_16k_n32_600k_step`` recipe model.

    16 kHz, hop 320 (50 Hz), 32 x 1024 codebooks: 0.5 to 16 kbps with structured dropout
    over [1, 2, 4, 8, 16, 32] codebooks; audiocraft's codebook EMA and dead-code order.""",
    encoder=dict(ratios=[[4, 1], [4, 1], [4, 2], [4, 1]]),
    quantizer=dict(ema_init="unweighted", dead_code="before_ema"),
    quantizer_dropout_choices=[1, 2, 4, 8, 16, 32],
    commitment_average="all",
)


freqcodec_tiny_conf = define_preset(
    FreqCodec,
    "freqcodec_tiny_conf",
    """``codec_conf`` of a toy FreqCodec for tests and the CPU demo.

    16 kHz, hop 320 (50 Hz), C = 4, D = 32, no LSTM, 4 codebooks of 64 entries (1.2 kbps)
    with structured dropout over [1, 2, 4].""",
    base=freqcodec_16k_conf,
    dimension=32,
    encoder=dict(n_filters=4, lstm=0),
    quantizer=dict(n_codebooks=4, codebook_size=64, kmeans_iters=10),
    quantizer_dropout_choices=[1, 2, 4],
)
