"""Batched encoding and decoding of utterances of different lengths.

Several utterances go through one forward when that gives each the codes and waveform
it gets alone (up to float rounding):

* A codec whose every layer is causal (causal :class:`~codectk.nn.conv.SConv1d` /
  :class:`~codectk.nn.conv.SConvTranspose1d` without group norm, unidirectional LSTMs,
  per-frame quantizers; see :func:`right_padding_is_exact`) never lets the zeros appended
  after a short utterance reach its own samples, so utterances of any lengths share a
  batch (sorted by length, to pad little) -- once they have more frames than the widest
  reflect padding (:func:`mixed_length_min_frames`): reflecting a shorter input reads
  past its end (EnCodec's causal convolutions reflect-pad on the left).
* Any other codec (non-causal convolutions, attention, time-wise normalisation) batches
  only utterances with the same number of frames F = ceil(T / hop_length): each is then
  padded exactly as it is alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.models.base import Codec
from codectk.nn.conv import SConv1d, SConvTranspose1d
from codectk.nn.lstm import SLSTM
from codectk.nn.seanet import SEANetDecoder, SEANetEncoder, SEANetResnetBlock
from codectk.quantization.rvq import ResidualVectorQuantizer
from codectk.quantization.vq import EuclideanCodebook, VectorQuantizer

# Modules whose forward maps frame/sample t from inputs <= t only (given causal children).
_CAUSAL_CONTAINERS = (
    nn.Sequential,
    nn.ModuleList,
    SEANetEncoder,
    SEANetDecoder,
    SEANetResnetBlock,
    ResidualVectorQuantizer,
    VectorQuantizer,
)
_POINTWISE = (
    nn.ELU, nn.GELU, nn.LeakyReLU, nn.ReLU, nn.SiLU, nn.Tanh, nn.Identity, nn.Linear,
    EuclideanCodebook,
)  # fmt: skip


def _causal(module: nn.Module) -> bool:
    if isinstance(module, SConv1d):
        return module.causal and isinstance(module.norm, nn.Identity)
    if isinstance(module, SConvTranspose1d):
        return (
            module.causal
            and module.trim_right_ratio == 1.0
            and isinstance(module.norm, nn.Identity)
        )
    if isinstance(module, SLSTM):
        return not module.lstm.bidirectional
    if isinstance(module, _POINTWISE):
        return True
    if isinstance(module, _CAUSAL_CONTAINERS):
        return all(_causal(m) for m in module.children())
    return False


def right_padding_is_exact(codec: Codec) -> bool:
    """Whether zeros appended to an utterance leave its codes and samples unchanged.

    True only when the codec's encoder, quantizer and decoder are built from known causal
    parts (see module doc); unknown modules count as non-causal.
    """
    parts = [getattr(codec, n, None) for n in ("encoder", "quantizer", "decoder")]
    return all(isinstance(p, nn.Module) and _causal(p) for p in parts)


def mixed_length_min_frames(codec: Codec) -> int | None:
    """The fewest frames F from which utterances of different lengths may share a batch.

    Returns:
        int | None: None when only utterances with equal F may (see
        :func:`right_padding_is_exact`); else 1 + the widest reflect/replicate padding of
        any convolution (every layer runs on at least F samples).
    """
    if not right_padding_is_exact(codec):
        return None
    pads = [
        m.effective_kernel_size - m.stride
        for m in codec.modules()
        if isinstance(m, SConv1d) and m.causal_pad_mode != "constant"
    ]
    return 1 + max(pads, default=0)


def plan_batches(frames: Sequence[int], batch_size: int, min_frames: int | None) -> list[list[int]]:
    """Group item indices into batches.

    Args:
        frames (Sequence[int]): frames F of each item.
        batch_size (int): most items per batch (>= 1).
        min_frames (int | None): :func:`mixed_length_min_frames` of the codec: items with
            at least this many frames batch together whatever their lengths; the others
            (all of them for None) only with items of equal F.

    Returns:
        list[list[int]]: batches of indices, longest items first.

    Raises:
        ValueError: for ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def key(i: int) -> int | None:
        return None if min_frames is not None and frames[i] >= min_frames else frames[i]

    order = sorted(range(len(frames)), key=lambda i: (-frames[i], i))
    groups: list[list[int]] = []
    for i in order:
        last = groups[-1] if groups else None
        if last and len(last) < batch_size and key(last[0]) == key(i):
            last.append(i)
        else:
            groups.append([i])
    return groups


def encode_batch(codec: Codec, wavs: Sequence[Tensor], n_quantizers: int | None) -> list[Tensor]:
    """Encode 1-D waveforms in one forward (right-padded with zeros).

    Args:
        codec (Codec): the codec.
        wavs (Sequence[Tensor]): waveforms (T_i,) at ``codec.sample_rate`` Hz, on the
            codec's device; plan with :func:`plan_batches` for one-by-one results.
        n_quantizers (int | None): codebooks K' (None: all).

    Returns:
        list[Tensor]: codes (K', ceil(T_i / hop_length)) per waveform.
    """
    longest = max(w.shape[-1] for w in wavs)
    x = torch.stack([F.pad(w, (0, longest - w.shape[-1])) for w in wavs])[:, None]  # (B, 1, T)
    codes = codec.encode(x, n_quantizers)  # (B, K', F)
    return [c[:, : math.ceil(w.shape[-1] / codec.hop_length)] for c, w in zip(codes, wavs)]


def decode_batch(codec: Codec, codes: Sequence[Tensor]) -> list[Tensor]:
    """Decode codes (K', F_i) in one forward (right-padded with code 0).

    Returns:
        list[Tensor]: waveforms (F_i * hop_length,).
    """
    longest = max(c.shape[-1] for c in codes)
    batch = torch.stack([F.pad(c, (0, longest - c.shape[-1])) for c in codes])  # (B, K', F)
    wav = codec.decode(batch)  # (B, 1, F * hop)
    return [y[0, : c.shape[-1] * codec.hop_length] for y, c in zip(wav, codes)]
