"""AudioDec: the streaming symmetric codec (``symad``) and the AD vocoder codec (``audiodec``).

Wu, Gebru, Marković, Richard, "AudioDec: An Open-source Streaming High-fidelity Neural
Audio Codec", ICASSP 2023 (facebookresearch/AudioDec):

* ``symad`` (§2.1, the "symAD" autoencoder): causal encoder -> projector -> residual
  VQ -> causal decoder (:mod:`codectk.nn.audiodec_net`). Paper size at 48 kHz: C = 32,
  strides (3, 4, 5, 5) (hop 300, 160 Hz frames), D = 64, 8 codebooks x 1024 ->
  8 x 10 bit x 160 Hz = 12.8 kbps; the 24 kHz LibriTTS model (same layers, hop 300,
  80 Hz) gives 6.4 kbps. The codebooks are EMA buffers (decay 0.8, random init, no
  dead-code replacement), so the trainable parameters are 7,939,936 at paper size, as
  the authors' ``Generator``.
  Training (§2.2, ``trainer/autoencoder.py``): metric losses only (mel + VQ) for the
  first N steps; then, with encoder, projector and quantizer frozen, the decoder with
  the discriminators. In codectk: ``discriminator_start_step: N``,
  ``freeze_modules: [encoder, projector, quantizer]``, ``freeze_from_step: N``.
* ``audiodec`` (§2.3, "AD v0/v1/v2"): the trained symAD encoder, projector and
  quantizer (frozen, copied with the trainer's ``init_from``/``init_modules``) feed the
  quantised latent, normalised by the training set's per-dimension mean and standard
  deviation (``codectk.bin.code_stats``, as ``codecStatistic.py``), to a causal HiFi-GAN
  vocoder. AD v1 (multi-group block, groups 3, kernel 11) has 19,461,090 parameters
  with weight normalisation.

Both are streamable: :class:`codectk.streaming.Streamer` gives, chunk after chunk,
exactly the whole-utterance output; the algorithmic delay is the chunk length (no
look-ahead).
MIMO (AudioDec's ``input_channels`` / ``output_channels``): ``encode`` takes
(B, input_channels, T) and ``decode`` returns (B, output_channels, T'); the training
losses and data pipeline are mono, so train with 1 / 1.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from codectk.errors import CodectkError, check_choice
from codectk.models.base import CODECS, AutoencoderCodec
from codectk.nn.audiodec_net import (
    AudioDecDecoder,
    AudioDecEncoder,
    CausalHiFiGANGenerator,
    Projector,
)
from codectk.quantization import QUANTIZERS
from codectk.quantization.base import HostFlag

log = logging.getLogger(__name__)


class AudioDecAnalysis(AutoencoderCodec):
    """Encoder, projector and residual VQ shared by ``symad`` and ``audiodec``.

    Subclasses set ``decoder`` (a causal network mapping (B, D, F) to
    (B, output_channels, F * hop)) and may override :meth:`synthesise`.
    """

    def _build_analysis(
        self,
        sample_rate: int,
        input_channels: int,
        encode_channels: int,
        code_dim: int,
        codebook_num: int,
        codebook_size: int,
        enc_ratios: list[int],
        enc_strides: list[int],
        ema_decay: float,
        kmeans_init: bool,
        threshold_ema_dead_code: float,
        ema_init: str = "weighted",
        random_init: str = "kaiming_uniform",
    ) -> None:
        if input_channels < 1:
            raise ValueError(f"input_channels must be >= 1, got {input_channels}")
        self.sample_rate = sample_rate
        self.channels = input_channels
        self.hop_length = math.prod(enc_strides)
        self.n_codebooks = codebook_num
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.encoder = AudioDecEncoder(input_channels, encode_channels, enc_ratios, enc_strides)
        self.projector = Projector(self.encoder.out_channels, code_dim)
        self.quantizer = QUANTIZERS.build(
            "rvq",
            dict(
                dimension=code_dim,
                n_codebooks=codebook_num,
                codebook_size=codebook_size,
                decay=ema_decay,
                kmeans_init=kmeans_init,
                threshold_ema_dead_code=threshold_ema_dead_code,
                ema_init=ema_init,
                random_init=random_init,
            ),
        )

    def _build_analysis_from(self, arguments: Mapping[str, Any]) -> None:
        """:meth:`_build_analysis` with its arguments taken by name from ``arguments``, a
        subclass constructor's ``locals()`` once ``enc_ratios`` and ``enc_strides`` have
        their defaults."""
        names = inspect.signature(self._build_analysis).parameters
        self._build_analysis(**{name: arguments[name] for name in names})

    def latent(self, wav: Tensor) -> Tensor:
        """Waveform (B, input_channels, T) -> z (B, D, ceil(T / hop))."""
        return self.projector(self.encoder(self.pad(wav)))


@CODECS.register("symad")
class SymAD(AudioDecAnalysis):
    """AudioDec's symmetric autoencoder codec ("symAD"); defaults are the paper's 48 kHz
    VCTK model (``symAD_vctk_48000_hop300``).

    Args:
        sample_rate (int): Hz.
        input_channels (int): channels of the input audio (MIMO).
        output_channels (int): channels of the decoded audio (MIMO).
        encode_channels (int): C of the encoder.
        decode_channels (int): C of the decoder.
        code_dim (int): D.
        codebook_num (int): K.
        codebook_size (int): entries per codebook.
        enc_ratios (list[int]): encoder channel multipliers.
        dec_ratios (list[int]): decoder channel multipliers.
        enc_strides (list[int]): encoder strides (hop = product).
        dec_strides (list[int]): decoder strides (same product).
        ema_decay (float): codebook EMA decay (AudioDec: 0.8).
        kmeans_init (bool): k-means codebook initialisation (AudioDec: no, random).
        threshold_ema_dead_code (float): dead-code replacement (AudioDec: 0, none).
        ema_init (str), random_init (str): codebook start, see
            :class:`~codectk.quantization.vq.EuclideanCodebook` (AudioDec: "unweighted"
            cluster sizes 0, "normal" randn(D, V) codebooks; its configs set them).

    Raises:
        ValueError: encoder and decoder strides with different products, or bad sizes.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        input_channels: int = 1,
        output_channels: int = 1,
        encode_channels: int = 32,
        decode_channels: int = 32,
        code_dim: int = 64,
        codebook_num: int = 8,
        codebook_size: int = 1024,
        enc_ratios: list[int] | None = None,
        dec_ratios: list[int] | None = None,
        enc_strides: list[int] | None = None,
        dec_strides: list[int] | None = None,
        ema_decay: float = 0.8,
        kmeans_init: bool = False,
        threshold_ema_dead_code: float = 0.0,
        ema_init: str = "weighted",
        random_init: str = "kaiming_uniform",
    ):
        super().__init__()
        enc_ratios = [2, 4, 8, 16] if enc_ratios is None else enc_ratios
        dec_ratios = [16, 8, 4, 2] if dec_ratios is None else dec_ratios
        enc_strides = [3, 4, 5, 5] if enc_strides is None else enc_strides
        dec_strides = [5, 5, 4, 3] if dec_strides is None else dec_strides
        if math.prod(enc_strides) != math.prod(dec_strides):
            raise ValueError(
                f"enc_strides {enc_strides} and dec_strides {dec_strides} must have the same product"
            )
        self._build_analysis_from(locals())
        self.output_channels = output_channels
        self.decoder = AudioDecDecoder(
            code_dim, output_channels, decode_channels, dec_ratios, dec_strides
        )


def read_code_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read code statistics written by ``codectk.bin.code_stats``.

    Accepts the ``.npy`` array (2, D) of AudioDec's ``codecStatistic.py`` (row 0 mean,
    row 1 standard deviation) or codectk's ``.json`` (``mean``, ``scale`` lists).

    Returns:
        tuple[np.ndarray, np.ndarray]: mean (D,) and scale (D,), float32.

    Raises:
        CodectkError: missing or malformed file, or a non-positive scale.
    """
    path = Path(path)
    if not path.is_file():
        raise CodectkError(f"{path}: code statistics file not found (run codectk.bin.code_stats)")
    try:
        if path.suffix == ".json":
            obj = json.loads(path.read_text())
            mean, scale = np.asarray(obj["mean"]), np.asarray(obj["scale"])
        else:
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 2 or arr.shape[0] != 2:
                raise ValueError(f"expected an array (2, D), got {arr.shape}")
            mean, scale = arr[0], arr[1]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodectkError(f"{path}: not a code statistics file: {exc}") from None
    if mean.shape != scale.shape or mean.ndim != 1:
        raise CodectkError(f"{path}: mean {mean.shape} and scale {scale.shape} must be (D,)")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise CodectkError(f"{path}: statistics must be finite with scale > 0")
    return mean.astype(np.float32), scale.astype(np.float32)


@CODECS.register("audiodec")
class AudioDecVocoder(AudioDecAnalysis):
    """AudioDec with a HiFi-GAN vocoder decoder (AD v0 / v1 / v2); defaults are AD v1 at
    48 kHz (``AudioDec_v1_symAD_vctk_48000_hop300_clean``).

    The analysis arguments are those of :class:`SymAD` (they must match the symAD
    experiment named by ``init_from``). Vocoder arguments:

    Args:
        vocoder_channels (int): channels after the vocoder's first conv (512).
        vocoder_kernel_size (int): first/last conv kernel (7).
        upsample_scales (list[int] | None): upsampling factors, product = hop
            (default [5, 5, 4, 3]).
        resblock_kernel_sizes (list[int] | None): v0: [3, 7, 11]; v1: [11]; v2: [3].
        resblock_dilations (list[list[int]] | None): one list per kernel ([1, 3, 5]).
        groups (int): multi-group block groups (v1/v2: 3; v0: 1 = MRF).
        stats (str | None): code statistics (``.npy`` (2, D) or ``.json``) used to
            normalise the quantised latent: (z_q - mean) / scale. Stored as buffers, so
            a trained model does not need the file; when the file is missing at build
            time the model warns and refuses to *train* until it is given.

    Raises:
        ValueError: upsampling product != hop; CodectkError: a bad statistics file.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        input_channels: int = 1,
        output_channels: int = 1,
        encode_channels: int = 32,
        code_dim: int = 64,
        codebook_num: int = 8,
        codebook_size: int = 1024,
        enc_ratios: list[int] | None = None,
        enc_strides: list[int] | None = None,
        ema_decay: float = 0.8,
        kmeans_init: bool = False,
        threshold_ema_dead_code: float = 0.0,
        ema_init: str = "weighted",
        random_init: str = "kaiming_uniform",
        vocoder_channels: int = 512,
        vocoder_kernel_size: int = 7,
        upsample_scales: list[int] | None = None,
        resblock_kernel_sizes: list[int] | None = None,
        resblock_dilations: list[list[int]] | None = None,
        groups: int = 3,
        stats: str | None = None,
    ):
        super().__init__()
        enc_ratios = [2, 4, 8, 16] if enc_ratios is None else enc_ratios
        enc_strides = [3, 4, 5, 5] if enc_strides is None else enc_strides
        upsample_scales = [5, 5, 4, 3] if upsample_scales is None else upsample_scales
        kernels = [11] if resblock_kernel_sizes is None else resblock_kernel_sizes
        dilations = [[1, 3, 5]] * len(kernels) if resblock_dilations is None else resblock_dilations
        if math.prod(upsample_scales) != math.prod(enc_strides):
            raise ValueError(
                f"upsample_scales {upsample_scales} must multiply to the hop "
                f"{math.prod(enc_strides)} of enc_strides {enc_strides}"
            )
        self._build_analysis_from(locals())
        self.output_channels = output_channels
        self.decoder = CausalHiFiGANGenerator(
            code_dim,
            output_channels,
            vocoder_channels,
            vocoder_kernel_size,
            upsample_scales,
            kernels,
            dilations,
            groups,
        )
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_scale", torch.ones(code_dim))
        self.register_buffer("stats_loaded", torch.tensor(False))
        self._stats_loaded = HostFlag()
        self.stats_path = stats
        if stats is not None:
            if Path(stats).is_file():
                self.set_code_stats_(*read_code_stats(stats))
            else:
                log.warning(
                    "code statistics %s not found: using the statistics stored in the model "
                    "file, if any (training needs the file)",
                    stats,
                )

    @torch.no_grad()
    def set_code_stats_(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Set the latent normalisation (mean (D,), scale (D,)).

        Raises:
            ValueError: statistics of another dimension than D.
        """
        if mean.shape != (self.code_dim,) or scale.shape != (self.code_dim,):
            raise ValueError(
                f"code statistics have dimension {mean.shape}, the codec's code_dim is {self.code_dim}"
            )
        self.code_mean.copy_(torch.from_numpy(mean))
        self.code_scale.copy_(torch.from_numpy(scale))
        self.stats_loaded.fill_(True)

    def on_train_step(self, step: int) -> None:
        """Refuse to train a vocoder without code statistics.

        Raises:
            CodectkError: when ``stats`` was not given or not loaded.
        """
        if not self._stats_loaded.read(self.stats_loaded):  # no device read per step
            raise CodectkError(
                f"audiodec: code statistics not loaded (stats={self.stats_path!r}); run "
                "codectk.bin.code_stats on the symAD experiment and pass --codec_conf.stats"
            )

    def normalise(self, z_q: Tensor) -> Tensor:
        """(z_q - mean) / scale per latent dimension; (B, D, F) -> (B, D, F)."""
        return (z_q - self.code_mean[:, None]) / self.code_scale[:, None]

    def synthesise(self, z_q: Tensor) -> Tensor:
        """Quantised latent (B, D, F) -> waveform (B, output_channels, F * hop)."""
        return self.decoder(self.normalise(z_q))


def symad_48k_conf() -> dict[str, Any]:
    """``symAD_vctk_48000_hop300``: 48 kHz, hop 300, 8 x 1024 codebooks, 12.8 kbps."""
    return {"sample_rate": 48000}


def symad_24k_conf() -> dict[str, Any]:
    """``symAD_libritts_24000_hop300``: 24 kHz, hop 300, 8 x 1024 codebooks, 6.4 kbps."""
    return {"sample_rate": 24000}


def audiodec_vocoder_conf(version: str, sample_rate: int = 48000) -> dict[str, Any]:
    """The AD vocoder layouts: "v0" (MRF 3/7/11), "v1" (groups 3, kernel 11), "v2"
    (groups 3, kernel 3).

    Raises:
        ValueError: an unknown version.
    """
    layouts = {
        "v0": {"resblock_kernel_sizes": [3, 7, 11], "groups": 1},
        "v1": {"resblock_kernel_sizes": [11], "groups": 3},
        "v2": {"resblock_kernel_sizes": [3], "groups": 3},
    }
    check_choice("AudioDec vocoder", version, layouts)
    conf = dict(layouts[version])
    conf["resblock_dilations"] = [[1, 3, 5]] * len(conf["resblock_kernel_sizes"])
    return {"sample_rate": sample_rate, **conf}
