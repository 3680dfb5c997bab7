"""ESC: Efficient Speech Codec (complex STFT, Swin transformers, cross-scale residual VQ).

Gu and Diao, "ESC: Efficient Speech Coding with Cross-Scale Residual Vector Quantized
Transformers", EMNLP 2024 (arXiv 2404.19441); the authors' ``esc/models/esc.py``,
``base.py``, ``csrvq.py`` and ``configs/9kbps_esc_{base,large}.yaml``:

* Front end (§3.1): complex STFT, ``n_fft = 2 (n_freq - 1)`` = 382 (192 bins), Hann
  window of 320 samples (20 ms), hop 80 (5 ms), centred; real and imaginary parts are the
  2 input channels of a (B, 2, 192, T / 80) map. The decoder predicts the same map, which
  the inverse STFT turns back into samples.
* Encoder: :class:`~codectk.nn.swin.PatchEmbed` of (3, 2) patches (64 x T / 160 grid,
  ``dims[0]`` channels), one Swin stage at that scale, then ``len(dims) - 1`` stages that
  each halve the frequency axis (:class:`~codectk.nn.swin.PatchMerge`) and widen the
  channels to ``dims[i + 1]``: 64 -> 32 -> 16 -> 8 -> 4 -> 2 patches for the paper's 6
  scales. Every stage: ``encoder.depth`` blocks alternating W-MSA and SW-MSA on 4 x 4 windows.
* Decoder mirrors it with :class:`~codectk.nn.swin.PatchSplit` stages, a final Swin stage
  at ``dims[0]`` and :class:`~codectk.nn.swin.PatchDeEmbed`.
* Cross-scale residual VQ (§3.2, :class:`~codectk.quantization.csrvq.CrossScaleRVQ`):
  S = ``len(dims)`` streams; stream 1 quantizes the bottom encoder feature, stream s the
  residual between the encoder and the decoder at the scale before decoder stage s - 1.
  Each stream is a product VQ of ``quantizer.groups`` (3) codebooks of 1024 entries
  over ``quantizer.overlap`` (2) time patches: frames of 80 * 2 * 2 = 320 samples
  (50 Hz), 3 * 10 bits per frame = 1.5 kbps per stream, 1.5 to 9 kbps for 1 to 6
  streams.
* Training (the authors' ``trainer_no_adv.py``): ``pretrain_steps`` without quantization
  (projections only, the authors' ``freeze_codebook``), then quantization with stream
  dropout: with probability ``dropout_rate`` (0.75) a batch uses S' ~ U{1..S} streams,
  otherwise all S. The model adds the power-law compressed complex-STFT loss (Wilson et
  al., "Exploring tradeoffs in models for low-latency speech enhancement", IWAENC 2018:
  MSE of sign(X) |X|^0.3 between input and predicted spectra, weight
  ``stft_loss_weight``) to ``CodecOutput.losses``; the waveform losses are those of
  ``loss: esc`` (:mod:`codectk.losses.esc_loss`).

Codes (B, K, F) hold K = 3 S' codebooks stream-major (codebook 3 s + g is group g of
stream s + 1); ``n_quantizers`` and ``--target_bandwidth`` select whole streams.

Changed for codectk: (1) any T is accepted: F = ceil(T / 320) code frames decode to
exactly F * 320 samples; a T of 320 F - 80 samples (the authors' clip lengths) gives
exactly the authors' spectrum, other lengths are zero-padded first (see
:meth:`ESC.spectrum`); (2) the authors' loop
over windows is one batched ``scaled_dot_product_attention`` call; (3) without autograd
the Swin blocks run in cache-sized chunks and the output 5x5 conv, pixel shuffle and 3x3
conv as one conv (:mod:`codectk.nn.swin`; same outputs up to float rounding), and
``precision="bf16"`` inference runs the stages in bfloat16
(:meth:`ESC.low_precision_modules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from codectk.models.base import CODECS, Codec, CodecOutput
from codectk.nn.swin import PatchDeEmbed, PatchEmbed, SwinStage
from codectk.quantization import QUANTIZERS
from codectk.registry import build_section, check_kwargs, define_preset, merge_sections


def power_law(x: Tensor, power: float = 0.3, eps: float = 1e-10) -> Tensor:
    """sign(x) (|x| + eps)^power, elementwise (the authors' spectral compression)."""
    return torch.sign(x) * (x.abs() + eps) ** power


@dataclass(frozen=True)
class ESCNetConfig:
    """ESC's Swin network: the keys of ``codec_conf.encoder``, shared by the mirrored
    decoder (reversed ``dims`` and ``num_heads``). Defaults: :attr:`ESC.ENCODER`
    (ESC-Base).

    Args:
        patch_size (list[int]): (frequency, time) patch size in STFT bins and frames
            ([3, 2]).
        dims (list[int]): channels per scale, finest first; S = len(dims) streams
            ([45, 72, 96, 144, 192, 384]).
        num_heads (list[int]): heads of the S - 1 down stages (the first is also the pre
            stage's; reversed for the decoder) ([3, 6, 12, 24, 24]).
        depth (int): Swin blocks per stage (2).
        window_size (int): attention window side in patches (4).
        mlp_ratio (float): MLP width / channels (4.0).

    Raises:
        ValueError: ``patch_size`` not 2 values, or not one ``num_heads`` per down stage.
    """

    patch_size: list[int]
    dims: list[int]
    num_heads: list[int]
    depth: int
    window_size: int
    mlp_ratio: float

    def __post_init__(self):
        if len(self.patch_size) != 2 or len(self.num_heads) != len(self.dims) - 1:
            raise ValueError(
                f"codec_conf.encoder: patch_size {self.patch_size} needs 2 values and "
                f"num_heads {self.num_heads} one per down stage ({len(self.dims) - 1} for "
                f"dims {self.dims})"
            )


@CODECS.register("esc")
class ESC(Codec):
    """ESC generator (see module doc). Defaults are ESC-Base.

    Args:
        sample_rate (int): audio rate in Hz.
        n_freq (int): STFT bins (n_fft = 2 (n_freq - 1)); divisible by the frequency
            patch size.
        win_length (int): STFT Hann window in samples.
        stft_hop_length (int): STFT hop in samples.
        encoder (dict | None): the Swin network's settings over :attr:`ENCODER`, shared
            by the mirrored decoder: ``patch_size``, ``dims``, ``num_heads``, ``depth``,
            ``window_size``, ``mlp_ratio`` (see :class:`ESCNetConfig`).
        quantizer (dict | None): :class:`~codectk.quantization.csrvq.CrossScaleRVQ`'s
            arguments over :attr:`QUANTIZER`: ``overlap`` (2, time patches per code
            frame), ``groups`` (3, codebooks per stream), ``codebook_size`` (1024
            codewords per codebook), ``codebook_dims`` ([32, 32, 16, 12, 8, 6], lookup
            dimension of each stream's codebooks, bottom stream first); ``dims`` and
            ``n_freqs`` follow from the network, ``dropout_rate`` is the top-level key.
        pretrain_steps (int): training steps (1-based, inclusive) without quantization.
        dropout_rate (float): probability that a batch draws its number of streams.
        stft_loss_weight (float): weight of the complex-STFT loss in ``losses["stft"]``
            (0: not computed).
        stft_loss_power (float): power-law exponent of that loss.

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section (naming
            ``codec_conf.<section>``).
        ValueError: inconsistent list lengths, or a grid that the scales do not divide.
    """

    ENCODER = dict(
        patch_size=[3, 2],
        dims=[45, 72, 96, 144, 192, 384],
        num_heads=[3, 6, 12, 24, 24],
        depth=2,
        window_size=4,
        mlp_ratio=4.0,
    )
    QUANTIZER = dict(overlap=2, groups=3, codebook_size=1024, codebook_dims=[32, 32, 16, 12, 8, 6])

    def __init__(
        self,
        sample_rate: int = 16000,
        n_freq: int = 192,
        win_length: int = 320,
        stft_hop_length: int = 80,
        encoder: dict[str, Any] | None = None,
        quantizer: dict[str, Any] | None = None,
        pretrain_steps: int = 0,
        dropout_rate: float = 0.75,
        stft_loss_weight: float = 1.0,
        stft_loss_power: float = 0.3,
    ):
        super().__init__()
        net = build_section(ESCNetConfig, encoder, "codec_conf.encoder", defaults=self.ENCODER)
        patch_size, dims, num_heads = list(net.patch_size), list(net.dims), list(net.num_heads)
        csrvq = QUANTIZERS.get("csrvq")
        q_conf = merge_sections(self.QUANTIZER, quantizer)
        check_kwargs(csrvq, q_conf, "codec_conf.quantizer")
        n_streams = len(dims)
        if len(q_conf["codebook_dims"]) != n_streams:
            raise ValueError(
                f"codec_conf.quantizer: codebook_dims {q_conf['codebook_dims']} needs one "
                f"value per stream ({n_streams})"
            )
        top = n_freq // patch_size[0]
        if n_freq % patch_size[0] or top % 2 ** (n_streams - 1):
            raise ValueError(
                f"n_freq {n_freq} / patch {patch_size[0]} = {n_freq / patch_size[0]} patches "
                f"must be an integer divisible by 2^{n_streams - 1}"
            )
        if not 0.0 <= dropout_rate <= 1.0 or pretrain_steps < 0:
            raise ValueError(
                f"dropout_rate {dropout_rate} must lie in [0, 1], pretrain_steps "
                f"{pretrain_steps} must be >= 0"
            )
        self.n_fft = 2 * (n_freq - 1)
        self.win_length, self.stft_hop_length = win_length, stft_hop_length
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        stage = dict(depth=net.depth, window_size=net.window_size, mlp_ratio=net.mlp_ratio)
        self.patch_embed = PatchEmbed(2, tuple(patch_size), dims[0])
        self.pre_stage = SwinStage(dims[0], dims[0], num_heads[0], **stage)
        self.encoder = nn.ModuleList(
            SwinStage(dims[i], dims[i + 1], num_heads[i], scale="down", **stage)
            for i in range(n_streams - 1)
        )
        rdims, rheads = dims[::-1], num_heads[::-1]
        self.decoder = nn.ModuleList(
            SwinStage(rdims[i], rdims[i + 1], rheads[i], scale="up", **stage)
            for i in range(n_streams - 1)
        )
        self.post_stage = SwinStage(dims[0], dims[0], rheads[-1], **stage)
        self.patch_deembed = PatchDeEmbed(dims[0], tuple(patch_size), 2)
        # Stream 1 and 2 work on the bottom scale, stream s >= 2 on decoder scale s - 2.
        q_dims = [rdims[0]] + rdims[:-1]
        q_freqs = [top // 2 ** (n_streams - 1)] + [
            top // 2 ** (n_streams - 1 - i) for i in range(n_streams - 1)
        ]
        self.quantizer = build_section(
            csrvq,
            q_conf,
            "codec_conf.quantizer",
            dims=q_dims,
            n_freqs=q_freqs,
            dropout_rate=dropout_rate,
        )
        self.sample_rate = sample_rate
        self.hop_length = stft_hop_length * patch_size[1] * q_conf["overlap"]
        self.n_streams = n_streams
        self.n_codebooks = n_streams * q_conf["groups"]
        self.codebook_size = q_conf["codebook_size"]
        self.pretrain_steps, self.dropout_rate = pretrain_steps, dropout_rate
        self.stft_loss_weight, self.stft_loss_power = stft_loss_weight, stft_loss_power
        self.quantizer_bypass = False

    # ------------------------------------------------------------------ interface
    def low_precision_modules(self) -> list[str]:
        """Every Swin stage and the patch (de-)embeddings, each on its own: the
        cross-scale quantizer between the decoder stages (projections, codebook search
        and lookup) and the STFT front end stay float32, and so do the residuals
        r_s = e_s - d_s and the sums d_s + Q(r_s) that it forms."""
        n = len(self.encoder)
        return (
            ["patch_embed", "pre_stage"]
            + [f"encoder.{i}" for i in range(n)]
            + [f"decoder.{i}" for i in range(n)]
            + ["post_stage", "patch_deembed"]
        )

    def on_train_step(self, step: int) -> None:
        """Pre-training (no quantization) for steps 1..``pretrain_steps``, then VQ."""
        self.quantizer_bypass = step <= self.pretrain_steps

    # ------------------------------------------------------------------ front end
    def spectrum(self, wav: Tensor) -> Tensor:
        """Waveform (B, 1, T) -> real/imaginary map (B, 2, n_freq, 4 F), F = ceil(T / 320).

        Centred frames every 80 samples (frame j at sample 80 j). When T <= 320 F - 80
        the signal is zero-padded to 320 F - 80 samples and all its 4 F frames are kept:
        the authors' framing, exactly their spectrum for their clips of 320 F - 80
        samples (``scripts/utils.py:40`` cuts 80 samples off each clip). Otherwise it is
        zero-padded to 320 F and the last of its 4 F + 1 frames dropped.

        Raises:
            ValueError: for a wav that is not (B, 1, T) or empty.
        """
        if wav.dim() != 3 or wav.shape[1] != 1 or wav.shape[-1] == 0:
            raise ValueError(f"wav must be (B, 1, T) with T > 0, got {tuple(wav.shape)}")
        extra = -wav.shape[-1] % self.hop_length
        authors = extra >= self.stft_hop_length
        if authors:
            extra -= self.stft_hop_length
        x = torch.nn.functional.pad(wav[:, 0], (0, extra)).float()  # (B, F * hop [- 80])
        with torch.autocast(x.device.type, enabled=False):
            spec = torch.stft(
                x,
                self.n_fft,
                self.stft_hop_length,
                self.win_length,
                window=self.window,
                center=True,
                pad_mode="reflect" if x.shape[-1] > self.n_fft // 2 else "constant",
                return_complex=True,
            )  # (B, n_freq, 4F) or (B, n_freq, 4F + 1)
        if not authors:
            spec = spec[..., :-1]  # (B, n_freq, 4F + 1) -> (B, n_freq, 4F)
        return torch.view_as_real(spec).permute(0, 3, 1, 2)  # (B, N, M, 2) -> (B, 2, N, M)

    def waveform(self, feat: Tensor) -> Tensor:
        """Real/imaginary map (B, 2, n_freq, M) -> waveform (B, 1, M * stft_hop_length)."""
        with torch.autocast(feat.device.type, enabled=False):
            spec = torch.view_as_complex(feat.float().permute(0, 2, 3, 1).contiguous())
            wav = torch.istft(
                spec,
                self.n_fft,
                self.stft_hop_length,
                self.win_length,
                window=self.window,
                center=True,
                length=spec.shape[-1] * self.stft_hop_length,
            )
        return wav[:, None]  # (B, T) -> (B, 1, T)

    def encoder_features(self, feat: Tensor) -> list[Tensor]:
        """Encoder features (B, H_s, W, C_s) of a (B, 2, n_freq, M) map, coarsest first."""
        x = self.pre_stage(self.patch_embed(feat))
        feats = [x]
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)
        return feats[::-1]

    def decoder_output(self, dec: Tensor) -> Tensor:
        """Finest decoder feature (B, H, W, C) -> real/imaginary map (B, 2, n_freq, M)."""
        return self.patch_deembed(self.post_stage(dec))

    # ------------------------------------------------------------------ codec
    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """See :meth:`Codec.encode`: codes (B, 3 S', ceil(T / 320)) for S' streams.

        Raises:
            ValueError: for a bad wav or ``n_quantizers`` not a multiple of 3 in 3..3 S.
        """
        n_streams = self.quantizer.check_n_quantizers(n_quantizers) // self.quantizer.groups
        enc = self.encoder_features(self.spectrum(wav))
        return self.quantizer.encode(enc, self.decoder, n_streams)

    def decode(self, codes: Tensor) -> Tensor:
        """See :meth:`Codec.decode`: waveform (B, 1, F * 320).

        Raises:
            ValueError: from :meth:`check_codes`.
        """
        self.check_codes(codes)
        dec = self.quantizer.decode(codes.long(), self.decoder)
        return self.waveform(self.decoder_output(dec))

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """Training pass (see :meth:`Codec.forward`); in training mode with
        ``n_quantizers`` None, stream dropout draws the streams, and during the
        pre-training steps every stream runs without quantization.

        Raises:
            ValueError: for a bad wav or ``n_quantizers``.
        """
        length = wav.shape[-1]
        bypass = self.training and self.quantizer_bypass
        if bypass:  # every stream, without lookup
            self.quantizer.check_n_quantizers(n_quantizers)
            k = self.n_codebooks
        else:  # n_quantizers, or stream dropout (the quantizer's policy) in training
            k = self.quantizer.n_for_forward(wav, n_quantizers)[0]
        n_streams = k // self.quantizer.groups
        feat = self.spectrum(wav)
        enc = self.encoder_features(feat)
        dec, codes, commit, codebook = self.quantizer(enc, self.decoder, n_streams, bypass)
        feat_hat = self.decoder_output(dec)
        losses = {}
        if self.stft_loss_weight > 0:
            p = self.stft_loss_power
            stft = (power_law(feat, p) - power_law(feat_hat.float(), p)).pow(2).mean()
            losses["stft"] = self.stft_loss_weight * stft
        return CodecOutput(
            wav=self.waveform(feat_hat)[..., :length],
            codes=codes,
            commitment_loss=commit.mean(),
            codebook_loss=codebook.mean(),
            n_quantizers=k,
            extras={"n_streams": n_streams, "quantizer_bypass": bypass},
            losses=losses,
        )


esc_base_conf = define_preset(
    ESC,
    "esc_base_conf",
    """``codec_conf`` of ESC-Base (the authors' ``configs/9kbps_esc_base.yaml``; the class
    defaults).""",
    encoder=dict(patch_size=[3, 2], dims=[45, 72, 96, 144, 192, 384], num_heads=[3, 6, 12, 24, 24]),
    quantizer=dict(codebook_dims=[32, 32, 16, 12, 8, 6]),
)


esc_tiny_conf = define_preset(
    ESC,
    "esc_tiny_conf",
    """``codec_conf`` of a toy ESC for tests and the CPU demo: 6 streams (1.5 to 9 kbps,
    as the paper), channels [8, 8, 8, 8, 8, 16], 2 Swin blocks per stage with 2 heads,
    1024-entry codebooks of dimension 4, 2 pre-training steps.""",
    base=esc_base_conf,
    encoder=dict(dims=[8, 8, 8, 8, 8, 16], num_heads=[2, 2, 2, 2, 2]),
    quantizer=dict(codebook_dims=[4, 4, 4, 4, 4, 4]),
    pretrain_steps=2,
)
