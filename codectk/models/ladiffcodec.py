"""LaDiffCodec: a discrete codec's codes de-quantised by latent diffusion.

Yang, Jang, Kim, "Generative De-Quantization for Neural Speech Codec via Latent
Diffusion", ICASSP 2024 (arXiv 2311.08330), §2 and Fig. 1. Three separately trained parts:

1. a discrete codec (any codectk family, or a converted EnCodec / DAC) whose codes are
   the bitstream; its de-quantised latent (the codebook sum) at ``cond_bandwidth`` kbps
   is the condition c (B, D_c, F_c);
2. a continuous autoencoder (:class:`ContinuousAE`, ``codec: continuous_ae``): a SEANet
   encoder/decoder without quantisation, trained alone with reconstruction and
   adversarial losses (``loss: ladiffcodec_ae``, the authors' objective), whose latent z (B, D, F) has a higher frame rate (hop 32 in the
   authors' README configuration: ``enc_ratios 8 4``, ``rep_dims 128``, ``n_filters 32``,
   ``lstm 2``, ``n_residual_layers 1``; 1,086,050 parameters);
3. a DDPM (:mod:`codectk.diffusion`) over the scaled latent z / s with the 1-D U-Net
   eps_theta(z_t, t, c) (``diff_dims`` 256, ``dim_mults`` (1, 2, 2, 4, 4): 135,118,976
   parameters); decoding draws z with a few DDIM steps from the condition and decodes it
   with the continuous decoder.

Condition alignment (issue 7, note 6): the codec's F_c frames (hop 320) and the latent's
F frames (hop 32) differ; the authors' training script hands the U-Net upsampling ratios
that it never uses, so their code relies on an implicit repeat. Here the condition is
resampled explicitly to exactly F frames (``cond_align``: "nearest" = repeat each frame
hop_c / hop_ae times when that is an integer, "linear" = linear interpolation), whatever
the two hops are.

Latent scaling (the authors' ``scaling_global`` / ``scaling_feature``): ``scaling``
"global" divides z by one scalar (the root mean square of the training latents),
"feature" standardises each of the D channels by its training mean and standard
deviation, "none" leaves z as it is. The authors divide by a fixed 18 (global) or by
each utterance's own max |z| (feature), which needs the clean latent at decoding time and
is therefore not a codec; here both are statistics of the training data, stored as
buffers (:meth:`LaDiffCodec.fit_scaling_`, run by ``codectk.bin.ladiffcodec_prepare``
before training). The condition is divided by its own max |c| per utterance
(``cond_scaling: max``, the authors' ``unet_scale_cond``); c comes from the codes, so
this is available at decoding.

Where the weights come from: the phase-3 config names the architectures inline
(``discrete_codec`` + ``discrete_codec_conf``, ``ae_conf``) so a packed model needs
nothing else; ``python -m codectk.bin.ladiffcodec_prepare`` fills them from the two
finished experiments, fits the scaling statistics on the training data and writes an
initial model file that the trainer's ``init_from`` loads. The frozen codec and
autoencoder stay in the state dict, so the packed phase-3 model decodes by itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from codectk.diffusion import GaussianDiffusion, UNet1D
from codectk.errors import CodectkError, check_choice
from codectk.models.base import CODECS, AutoencoderCodec, Codec, CodecOutput
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder, seanet_sections
from codectk.quantization.base import HostFlag
from codectk.registry import build_section

SCALINGS = ("global", "feature", "none")
COND_SCALINGS = ("max", "none")
COND_ALIGNS = ("nearest", "linear")
SAMPLERS = ("ddim", "ddpm")


@CODECS.register("continuous_ae")
class ContinuousAE(AutoencoderCodec):
    """SEANet autoencoder without quantisation (LaDiffCodec's phase 2).

    It is a :class:`~codectk.models.base.AutoencoderCodec` with no codebooks
    (``n_codebooks`` 0, ``bitrate()`` 0) so the GAN trainer, validation, checkpoints and
    averaging work unchanged: ``forward`` returns the reconstruction, an empty code tensor
    (B, 0, F) and zero VQ losses. It has no bitstream, so :meth:`encode` / :meth:`decode`
    raise; use :meth:`latent` (waveform -> z (B, D, F)) and :meth:`synthesise`
    (z -> waveform). Defaults are the authors' README configuration (EnCodec's SEANet:
    causal, weight norm, one residual unit with a 1x1 skip, two-layer LSTM, ELU).

    ``codec_conf`` sections, merged key by key over the class's defaults:

    * ``encoder``: the SEANet config the encoder and decoder share (every
      :class:`~codectk.nn.seanet.SEANetConfig` field but ``channels``, as
      :class:`~codectk.models.encodec.EnCodec`'s ``encoder`` section lists them); defaults
      :attr:`ENCODER`: ``dimension`` 128 (latent channels D, the authors' ``rep_dims``),
      ``n_filters`` 32, ``ratios`` [8, 4] (decoder order, the authors' ``enc_ratios``:
      hop 32 samples; null: [8, 4]), ``n_residual_layers`` 1, ``lstm`` 2, ``causal``
      True, ``norm`` "weight_norm", ``pad_mode`` "reflect", ``causal_pad_mode``
      "reflect" (as EnCodec's code), kernels 7 / 3 / 7, ``dilation_base`` 2,
      ``compress`` 2, ``true_skip`` False (1x1 skips), ``activation`` "elu";
    * ``decoder``: the decoder's differences from ``encoder`` (default none).

    Args:
        sample_rate (int): Hz.
        channels (int): audio channels.
        encoder (dict | None): the ``encoder`` section.
        decoder (dict | None): the ``decoder`` section.

    Raises:
        ConfigError (a ValueError): an unknown or badly typed key of a section, naming it.
        ValueError: bad strides, norm or activation.
    """

    ENCODER: dict[str, Any] = dict(ratios=[8, 4], causal=True, causal_pad_mode="reflect")
    """The ``encoder`` section's defaults: the authors' README configuration."""

    def __init__(
        self,
        sample_rate: int = 16000,
        channels: int = 1,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
    ):
        super().__init__()
        encoder = dict(encoder or {})
        if "ratios" in encoder and encoder["ratios"] is None:  # null: the authors' [8, 4]
            del encoder["ratios"]
        enc, dec = seanet_sections(channels, encoder, decoder, self.ENCODER)
        self.encoder = SEANetEncoder(enc)
        self.decoder = SEANetDecoder(dec)
        self.sample_rate, self.channels, self.dimension = sample_rate, channels, enc.dimension
        self.hop_length = math.prod(self.encoder.ratios)
        self.n_codebooks, self.codebook_size = 0, 1

    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Not available: a continuous autoencoder has no codes.

        Raises:
            CodectkError: always; use :meth:`latent`.
        """
        raise CodectkError("continuous_ae has no discrete codes; use latent() / synthesise()")

    def decode(self, codes: Tensor) -> Tensor:
        """Not available: a continuous autoencoder has no codes.

        Raises:
            CodectkError: always; use :meth:`synthesise`.
        """
        raise CodectkError("continuous_ae has no discrete codes; use latent() / synthesise()")

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """Reconstruct ``wav`` (B, channels, T) through the continuous latent.

        Returns:
            CodecOutput: ``wav`` (B, channels, T), ``codes`` (B, 0, F) empty, zero VQ losses.
        """
        length = wav.shape[-1]
        z = self.latent(wav)  # (B, D, F)
        zero = z.new_zeros(())
        return CodecOutput(
            wav=self.synthesise(z)[..., :length],
            codes=torch.zeros(z.shape[0], 0, z.shape[-1], dtype=torch.long, device=z.device),
            commitment_loss=zero,
            codebook_loss=zero,
            n_quantizers=0,
        )


@CODECS.register("ladiffcodec")
class LaDiffCodec(Codec):
    """Frozen discrete codec + frozen continuous AE + trainable latent-diffusion U-Net.

    ``encode`` gives the discrete codec's codes at ``cond_bandwidth`` (the bitstream);
    ``decode`` samples the continuous latent from them. In training, ``forward`` returns
    the DDPM loss in ``CodecOutput.losses["diffusion"]`` and, as ``wav``, the continuous
    decoder's output for the one-step x_0 estimate (a cheap reconstruction for
    validation).

    Args:
        discrete_codec (str): registry name of the frozen discrete codec (an
            :class:`~codectk.models.base.AutoencoderCodec`: every codectk family).
        discrete_codec_conf (dict | None): its ``codec_conf`` (constructor arguments, with
            their sections: e.g. SoundStream's ``encoder``, ``decoder``, ``quantizer``).
        ae_conf (dict | None): the :class:`ContinuousAE`'s ``codec_conf``
            (``sample_rate``, ``channels`` and its ``encoder`` / ``decoder`` sections).
        cond_bandwidth (float | None): kbps of the codes the diffusion is conditioned on
            (None: all codebooks); must be one of the codec's bandwidths.
        cond_scaling (str): "max" (divide c by its max |c| per utterance) or "none".
        cond_align (str): "nearest" or "linear" resampling of c to the latent frames.
        scaling (str): latent scaling, "global", "feature" or "none" (module docstring).
        diff_dims (int): U-Net base width.
        dim_mults (list[int]): U-Net width multipliers per level.
        resnet_groups (int): GroupNorm groups of the U-Net.
        timesteps (int): T of the diffusion.
        beta_schedule (str): "cosine" or "linear".
        objective (str): "eps", "v" or "x0".
        loss_type (str): "l1" or "l2".
        clip_denoised (float | None): clamp of x_0 estimates while sampling (scaled units).
        sampler (str): "ddim" (``sampling_steps`` network calls) or "ddpm" (T calls).
        sampling_steps (int): DDIM steps at decoding (``set_sampling`` changes it).
        ddim_eta (float): DDIM eta (0: deterministic given the seed).
        sampling_seed (int): seed of x_T at every ``decode`` call (same codes, same output).
        lambda_diffusion (float): weight of the diffusion loss.

    Raises:
        ValueError: an unknown option value, a discrete codec that is not an
            autoencoder codec, sample rates that differ, or a bandwidth the codec lacks.
    """

    def __init__(
        self,
        discrete_codec: str = "soundstream",
        discrete_codec_conf: dict | None = None,
        ae_conf: dict | None = None,
        cond_bandwidth: float | None = None,
        cond_scaling: str = "max",
        cond_align: str = "nearest",
        scaling: str = "global",
        diff_dims: int = 256,
        dim_mults: list[int] | None = None,
        resnet_groups: int = 8,
        timesteps: int = 1000,
        beta_schedule: str = "cosine",
        objective: str = "eps",
        loss_type: str = "l1",
        clip_denoised: float | None = None,
        sampler: str = "ddim",
        sampling_steps: int = 8,
        ddim_eta: float = 0.0,
        sampling_seed: int = 0,
        lambda_diffusion: float = 1.0,
    ):
        super().__init__()
        for name, value, valid in (
            ("scaling", scaling, SCALINGS),
            ("cond_scaling", cond_scaling, COND_SCALINGS),
            ("cond_align", cond_align, COND_ALIGNS),
            ("sampler", sampler, SAMPLERS),
        ):
            check_choice(name, value, valid)
        discrete = CODECS.build(discrete_codec, discrete_codec_conf or {})
        if not isinstance(discrete, AutoencoderCodec) or isinstance(discrete, ContinuousAE):
            raise ValueError(
                f"discrete_codec {discrete_codec!r} must be a quantising autoencoder codec"
            )
        ae = build_section(ContinuousAE, ae_conf, "codec_conf.ae_conf")
        if ae.sample_rate != discrete.sample_rate:
            raise ValueError(
                f"continuous AE at {ae.sample_rate} Hz, discrete codec at "
                f"{discrete.sample_rate} Hz: they must match"
            )
        self.discrete, self.ae = discrete, ae
        for part in (self.discrete, self.ae):
            part.requires_grad_(False)
            part.eval()
        self.n_quantizers = discrete.n_quantizers_for_bandwidth(cond_bandwidth)
        with torch.no_grad():  # the condition's channel count D_c
            probe = torch.zeros(1, self.n_quantizers, 1, dtype=torch.long)
            cond_channels = discrete.quantizer.decode(probe).shape[1]
        unet = UNet1D(
            channels=ae.dimension,
            cond_channels=cond_channels,
            dim=diff_dims,
            dim_mults=[1, 2, 2, 4, 4] if dim_mults is None else dim_mults,
            groups=resnet_groups,
        )
        self.diffusion = GaussianDiffusion(
            unet, timesteps, beta_schedule, objective, loss_type, clip_denoised
        )
        self.scaling, self.cond_scaling, self.cond_align = scaling, cond_scaling, cond_align
        self.lambda_diffusion, self.ddim_eta, self.sampling_seed = (
            lambda_diffusion,
            ddim_eta,
            sampling_seed,
        )
        self.set_sampling(sampling_steps, sampler)
        d = ae.dimension
        self.register_buffer("latent_mean", torch.zeros(d))
        self.register_buffer("latent_std", torch.ones(d))
        self.register_buffer("scaling_fitted", torch.tensor(scaling == "none"))
        self._scaling_fitted = HostFlag()
        self.sample_rate = discrete.sample_rate
        self.hop_length = discrete.hop_length
        self.n_codebooks = self.n_quantizers
        self.codebook_size = discrete.codebook_size

    # ------------------------------------------------------------ configuration
    def set_sampling(self, steps: int | None = None, sampler: str | None = None) -> None:
        """Change the decoding sampler and its number of steps (decode-time option).

        Raises:
            ValueError: an unknown sampler or steps outside 1..timesteps.
        """
        sampler = sampler or getattr(self, "sampler", "ddim")
        check_choice("sampler", sampler, SAMPLERS)
        steps = steps if steps is not None else self.sampling_steps
        if not 1 <= steps <= self.diffusion.timesteps:
            raise ValueError(f"sampling_steps {steps} must lie in 1..{self.diffusion.timesteps}")
        self.sampler, self.sampling_steps = sampler, int(steps)

    def train(self, mode: bool = True) -> LaDiffCodec:
        """Set training mode; the frozen codec and autoencoder always stay in eval mode."""
        super().train(mode)
        self.discrete.eval()
        self.ae.eval()
        return self

    # ----------------------------------------------------------------- scaling
    @torch.no_grad()
    def fit_scaling_(self, latents: Iterable[Tensor]) -> None:
        """Fit the latent scaling statistics from continuous latents of training audio.

        Args:
            latents: iterable of (B, D, F) latents (``self.ae.latent(wav)``).

        Raises:
            ValueError: no frames in ``latents`` or a zero standard deviation.
        """
        d = self.latent_mean.numel()
        n, s1, s2 = 0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        for z in latents:
            z = z.detach().double().cpu().transpose(0, 1).reshape(d, -1)  # (B, D, F) -> (D, B*F)
            n += z.shape[1]
            s1 += z.sum(dim=1)
            s2 += z.pow(2).sum(dim=1)
        if n == 0:
            raise ValueError("fit_scaling_: no latent frames given")
        if self.scaling == "global":
            mean = torch.zeros(d, dtype=torch.float64)
            std = (s2.sum() / (n * d)).sqrt().expand(d)
        elif self.scaling == "feature":
            mean = s1 / n
            std = (s2 / n - mean.pow(2)).clamp(min=0).sqrt()
        else:
            mean, std = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
        if (std <= 0).any():
            raise ValueError("fit_scaling_: a latent channel has zero standard deviation")
        self.latent_mean.copy_(mean.float())
        self.latent_std.copy_(std.float())
        self.scaling_fitted.fill_(True)

    def scale(self, z: Tensor) -> Tensor:
        """Latent z (B, D, F) -> diffusion space (z - mean) / std."""
        return (z - self.latent_mean[:, None]) / self.latent_std[:, None]

    def unscale(self, x: Tensor) -> Tensor:
        """Diffusion space (B, D, F) -> latent z."""
        return x * self.latent_std[:, None] + self.latent_mean[:, None]

    # --------------------------------------------------------------- condition
    def condition(self, codes: Tensor, n_frames: int) -> Tensor:
        """Condition features of codes, aligned to the latent frame rate.

        Args:
            codes (Tensor): (B, K, F_c) codes of the discrete codec.
            n_frames (int): F, frames of the continuous latent to align to.

        Returns:
            Tensor: (B, D_c, F): the de-quantised codec latent, scaled per
            ``cond_scaling`` and resampled per ``cond_align``.
        """
        c = self.discrete.quantizer.decode(codes.long())  # (B, D_c, F_c)
        return self.align(c, n_frames)

    def align(self, c: Tensor, n_frames: int) -> Tensor:
        """Scale (``cond_scaling``) and resample (``cond_align``) c (B, D_c, F_c) to
        (B, D_c, n_frames)."""
        if self.cond_scaling == "max":
            peak = c.abs().amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
            c = c / (peak + 1e-20)
        if c.shape[-1] == n_frames:
            return c
        if self.cond_align == "linear":
            return F.interpolate(c, size=n_frames, mode="linear", align_corners=False)
        return F.interpolate(c, size=n_frames, mode="nearest")

    def latent_frames(self, n_samples: int) -> int:
        """Frames F of the continuous latent for ``n_samples`` samples."""
        return math.ceil(n_samples / self.ae.hop_length)

    # ------------------------------------------------------------- codec API
    @property
    def valid_n_quantizers(self) -> list[int]:
        """One rung: the K codebooks of ``cond_bandwidth`` the diffusion model is trained on."""
        return [self.n_codebooks]

    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """The discrete codec's codes (B, K, F_c) at ``cond_bandwidth``.

        Raises:
            ValueError: ``n_quantizers`` other than the trained K, or a bad ``wav``.
        """
        n = self.n_codebooks if n_quantizers is None else n_quantizers
        if n not in self.valid_n_quantizers:
            raise ValueError(
                f"this LaDiffCodec is trained on {self.n_codebooks} codebooks "
                f"({self.bitrate():.3f} kbps); got n_quantizers {n}"
            )
        return self.discrete.encode(wav, n)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Sample the continuous latent from the codes and decode it.

        Args:
            codes (Tensor): (B, K, F_c) with K = ``n_codebooks``.

        Returns:
            Tensor: (B, 1, F_c * hop_length), the same for the same codes and
            ``sampling_seed``.

        Raises:
            ValueError: codes of a bad shape, dtype, value or number of codebooks.
        """
        self.check_codes(codes)  # K on the ladder: the one rung n_codebooks
        n_samples = codes.shape[-1] * self.hop_length
        n_frames = self.latent_frames(n_samples)
        c = self.condition(codes, n_frames)
        shape = (codes.shape[0], self.ae.dimension, n_frames)
        gen = torch.Generator(device=codes.device).manual_seed(self.sampling_seed)
        if self.sampler == "ddpm":
            x = self.diffusion.ddpm_sample(shape, c, generator=gen)
        else:
            x = self.diffusion.ddim_sample(shape, c, self.sampling_steps, self.ddim_eta, gen)
        return self.ae.synthesise(self.unscale(x))[..., :n_samples]

    def forward(self, wav: Tensor, n_quantizers: int | None = None) -> CodecOutput:
        """Training pass: the DDPM loss on the scaled continuous latent of ``wav``.

        In eval mode the diffusion steps and noise come from a fixed seed, so validation
        values are comparable between checkpoints.

        Args:
            wav (Tensor): (B, 1, T).
            n_quantizers (int | None): ignored unless it differs from ``n_codebooks``
                (an error).

        Returns:
            CodecOutput: ``losses["diffusion"]``; ``wav`` (B, 1, T) the continuous
            decoder's output for the one-step x_0 estimate; ``codes`` the condition codes.

        Raises:
            CodectkError: the scaling statistics were never fitted.
        """
        if not self._scaling_fitted.read(self.scaling_fitted):  # no device read per step
            raise CodectkError(
                "ladiffcodec: latent scaling statistics are not fitted; prepare the "
                "experiment with python -m codectk.bin.ladiffcodec_prepare (or call "
                "fit_scaling_) before training"
            )
        length = wav.shape[-1]
        with torch.no_grad():
            codes = self.encode(wav, n_quantizers)  # (B, K, F_c)
            z = self.ae.latent(wav)  # (B, D, F)
            c = self.condition(codes, z.shape[-1])  # (B, D_c, F)
        gen = None
        if not self.training:
            gen = torch.Generator(device=wav.device).manual_seed(self.sampling_seed)
        loss, x0_hat = self.diffusion.loss(self.scale(z), c, generator=gen)
        with torch.no_grad():
            wav_hat = self.ae.synthesise(self.unscale(x0_hat))[..., :length]
        zero = loss.new_zeros(())
        return CodecOutput(
            wav=wav_hat,
            codes=codes,
            commitment_loss=zero,
            codebook_loss=zero,
            n_quantizers=self.n_codebooks,
            losses={"diffusion": self.lambda_diffusion * loss},
        )
