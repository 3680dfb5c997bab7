"""Fast streaming inference for AudioDec codecs: every causal layer as one GEMM on
time-major (T, C) buffers.

For small chunks (600 samples at 48 kHz) PyTorch's conv1d falls back to its generic
im2col kernels and spends most of the time outside arithmetic (23 ms per chunk for
the paper-size symAD on one core here, as the authors' code). :class:`StreamingAudioDec`
keeps one stream's signals as (T, C) matrices and runs

* a causal conv (kernel k, dilation d, stride s) as ``cols @ W``, where ``cols``
  (F, k C_in) is a strided view of [left context; chunk] copied once and
  ``W[j C_in + c, o] = weight[o, c, j]``;
* a causal transposed conv (kernel 2 s) as ``[X_t, X_{t-1}] @ [W_0; W_1]`` giving
  (F, s C_out), i.e. F s output samples, with W_0 the first s taps and W_1 the last s
  (output sample m s + r mixes frame m with tap r and frame m - 1 with tap s + r);
* the residual 1x1 conv and skip as one ``addmm``; the RVQ as a distance GEMM per stage.

It is numerically equal (to float rounding) to the modules' ``encode_chunk`` /
``decode_chunk`` and hence to whole-utterance ``encode`` / ``decode``. Weight norm is
folded (the weights are copied at construction), inference only, one stream per object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.models.audiodec import AudioDecAnalysis, AudioDecVocoder
from codectk.nn.audiodec_net import (
    AudioDecDecoder,
    CausalHiFiGANGenerator,
    MultiGroupBlock,
    MultiReceptiveField,
    ResidualUnit,
)
from codectk.nn.causal import CausalConv1d, CausalConvTranspose1d


def _cast_(op: object, dtype: torch.dtype) -> None:
    """Convert the float tensors of an op, and of the ops it holds, to ``dtype``."""
    for name, value in list(vars(op).items()):
        if isinstance(value, Tensor):
            if value.is_floating_point():
                setattr(op, name, value.to(dtype))
        elif isinstance(value, list):
            for v in value:
                if hasattr(v, "reset"):
                    _cast_(v, dtype)
        elif hasattr(value, "reset") and not isinstance(value, nn.Module):
            _cast_(value, dtype)


def _weight(conv: nn.Module) -> Tensor:
    """The (folded) weight of a conv, weight-normalised or not."""
    return conv.weight.detach().clone()


class _Conv:
    """One causal conv on time-major buffers, with its left context."""

    def __init__(self, layer: CausalConv1d | nn.Conv1d):
        conv = layer.conv if isinstance(layer, CausalConv1d) else layer
        w = _weight(conv)  # (C_out, C_in / g, k)
        self.groups = conv.groups
        self.c_out, cin_g, self.k = w.shape
        self.c_in = cin_g * self.groups
        self.d = conv.dilation[0]
        self.s = conv.stride[0]
        self.context = (self.k - 1) * self.d
        self.bias = None if conv.bias is None else conv.bias.detach().clone()
        if self.groups == 1:
            self.w = w.permute(2, 1, 0).reshape(self.k * self.c_in, self.c_out).contiguous()
        else:  # (g, k C_in/g, C_out/g) for a batched GEMM over groups
            g, co = self.groups, self.c_out // self.groups
            wg = w.view(g, co, cin_g, self.k).permute(0, 3, 2, 1)  # (g, k, C_in/g, C_out/g)
            self.w = wg.reshape(g, self.k * cin_g, co).contiguous()
        self.buf: Tensor | None = None

    def reset(self) -> None:
        self.buf = None

    def __call__(self, x: Tensor) -> Tensor:
        """x (L, C_in) -> (F, C_out)."""
        if self.k == 1 and self.s == 1:
            return self._mm(x)
        buf = self.buf
        if buf is None:
            buf = x.new_zeros(self.context, self.c_in)
        z = torch.cat((buf, x)) if buf.shape[0] else x  # (N, C_in)
        n = z.shape[0]
        n_out = (n - self.context - 1) // self.s + 1
        if n_out <= 0:
            self.buf = z
            return x.new_zeros(0, self.c_out)
        self.buf = z[n_out * self.s :]
        z = z.contiguous()
        if self.groups == 1:
            if self.d == 1:  # a window is k consecutive rows: one strided view
                cols = z.as_strided((n_out, self.k * self.c_in), (self.s * self.c_in, 1))
            else:
                cols = z.as_strided(
                    (n_out, self.k, self.c_in), (self.s * self.c_in, self.d * self.c_in, 1)
                ).reshape(n_out, self.k * self.c_in)  # (F, k, C_in) -> (F, k C_in)
            return self._mm(cols)
        g, cg = self.groups, self.c_in // self.groups
        cols = z.as_strided(
            (g, n_out, self.k, cg), (cg, self.s * self.c_in, self.d * self.c_in, 1)
        ).reshape(g, n_out, self.k * cg)
        y = torch.bmm(cols, self.w)  # (g, F, C_out / g)
        y = y.transpose(0, 1).reshape(n_out, self.c_out)  # (F, g, C_out / g) -> (F, C_out)
        return y if self.bias is None else y + self.bias

    def _mm(self, cols: Tensor) -> Tensor:
        if self.groups != 1:
            raise NotImplementedError("grouped 1x1 convs are not used by AudioDec")
        if self.bias is None:
            return cols @ self.w
        return torch.addmm(self.bias, cols, self.w)


class _ConvT:
    """A causal transposed conv (kernel 2 s) on time-major buffers."""

    def __init__(self, layer: CausalConvTranspose1d):
        w = _weight(layer.deconv)  # (C_in, C_out, 2 s)
        c_in, c_out, k = w.shape
        s = layer.stride
        self.s, self.c_in, self.c_out = s, c_in, c_out
        w0 = w[:, :, :s].permute(0, 2, 1).reshape(c_in, s * c_out)  # taps r of frame m
        w1 = w[:, :, s:].permute(0, 2, 1).reshape(c_in, s * c_out)  # taps s + r of frame m-1
        self.w = torch.cat((w0, w1)).contiguous()  # (2 C_in, s C_out)
        bias = layer.deconv.bias
        self.bias = None if bias is None else bias.detach().repeat(s).contiguous()
        self.prev: Tensor | None = None

    def reset(self) -> None:
        self.prev = None

    def __call__(self, x: Tensor) -> Tensor:
        """x (F, C_in) -> (F s, C_out)."""
        f = x.shape[0]
        if f == 0:
            return x.new_zeros(0, self.c_out)
        prev = x[:1] if self.prev is None else self.prev
        self.prev = x[-1:]
        xx = torch.cat((x, torch.cat((prev, x[:-1])) if f > 1 else prev), dim=1)  # (F, 2 C_in)
        y = xx @ self.w if self.bias is None else torch.addmm(self.bias, xx, self.w)
        return y.view(f * self.s, self.c_out)  # (F, s C_out) -> (F s, C_out)


class _ResUnit:
    """x + conv1x1(ELU(conv(ELU(x)))) with the skip folded into the last addmm."""

    def __init__(self, unit: ResidualUnit):
        self.conv1 = _Conv(unit.conv1)
        self.w2 = _weight(unit.conv2)[:, :, 0].t().contiguous()  # (C, C)

    def reset(self) -> None:
        self.conv1.reset()

    def __call__(self, x: Tensor) -> Tensor:
        h = F.elu(self.conv1(F.elu(x)), inplace=True)
        return torch.addmm(x, h, self.w2)


class _HiFiResBlock:
    """Causal HiFi-GAN residual block (conv pairs with skips)."""

    def __init__(self, block):
        self.convs1 = [_Conv(c) for c in block.convs1]
        self.convs2 = [_Conv(c) for c in block.convs2]
        self.slope = block.slope

    def reset(self) -> None:
        for c in self.convs1 + self.convs2:
            c.reset()

    def __call__(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, self.slope)), self.slope))
        return x


class StreamingAudioDec:
    """Chunk-by-chunk encoder and decoder of a trained ``symad`` or ``audiodec`` codec
    for one stream (see module doc).

    Args:
        codec (AudioDecAnalysis): a :class:`~codectk.models.audiodec.SymAD` or
            :class:`~codectk.models.audiodec.AudioDecVocoder` (weights are copied).
        dtype (torch.dtype): arithmetic of the encoder and decoder layers (the RVQ
            search always runs in float32). ``torch.bfloat16`` roughly halves the GEMM
            time on CPUs with AVX512-BF16 / AMX at the cost of bf16 rounding (~1e-2
            relative), so its codes and waveform are no longer identical to float32's.

    Raises:
        TypeError: for another codec.
    """

    def __init__(self, codec: AudioDecAnalysis, dtype: torch.dtype = torch.float32):
        if not isinstance(codec, AudioDecAnalysis):
            raise TypeError(
                f"StreamingAudioDec needs an AudioDec codec, got {type(codec).__name__}"
            )
        self.codec = codec
        self.hop_length = codec.hop_length
        self.channels = codec.channels
        enc = codec.encoder
        self.enc_ops: list = [_Conv(enc.conv)]
        for block in enc.conv_blocks:
            self.enc_ops += [_ResUnit(u) for u in block.res_units] + [_Conv(block.conv)]
        self.enc_ops.append(_Conv(codec.projector.project))
        self.codebooks = [layer.codebook.embed.detach().clone() for layer in codec.quantizer.layers]
        self.codebooks_t = [e.t().contiguous() for e in self.codebooks]  # (D, V)
        self.codebook_norms = [e.pow(2).sum(1) for e in self.codebooks]  # (V,)
        self.norm = None
        if isinstance(codec, AudioDecVocoder):
            self.norm = (codec.code_mean.detach().clone(), codec.code_scale.detach().clone())
        self.dec_ops = self._decoder_ops(codec.decoder)
        self.dtype = dtype
        for op in self.enc_ops + self.dec_ops:
            _cast_(op, dtype)
        self.reset()

    def _decoder_ops(self, dec) -> list:
        if isinstance(dec, AudioDecDecoder):
            ops: list = [_Conv(dec.conv1)]
            for block in dec.conv_blocks:
                ops += [_ConvT(block.conv)] + [_ResUnit(u) for u in block.res_units]
            ops.append(_Conv(dec.conv2))
            return ops
        if isinstance(dec, CausalHiFiGANGenerator):
            return [_HiFiGAN(dec)]
        raise TypeError(f"unsupported decoder {type(dec).__name__}")

    def reset(self) -> None:
        """Start a new stream (clear every layer's context)."""
        for op in self.enc_ops + self.dec_ops:
            op.reset()

    @torch.inference_mode()
    def encode_chunk(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """wav (input_channels, L) -> codes (K', F_chunk) of the frames completed.

        Raises:
            ValueError: wav not (input_channels, L).
        """
        if wav.dim() != 2 or wav.shape[0] != self.channels:
            raise ValueError(f"wav must be ({self.channels}, L), got {tuple(wav.shape)}")
        x = wav.t().to(self.dtype)  # (C, L) -> (L, C)
        if self.channels > 1:
            x = x.contiguous()
        for op in self.enc_ops:
            x = op(x)
        x = x.float()
        n = self.codec.quantizer.check_n_quantizers(n_quantizers)
        codes = []
        residual = x  # (F, D)
        for i in range(n):
            # argmin_v ||r - e_v||^2 = argmin_v (||e_v||^2 - 2 r . e_v)
            score = torch.addmm(self.codebook_norms[i], residual, self.codebooks_t[i], alpha=-2)
            c = score.argmin(dim=1)
            residual = residual - self.codebooks[i][c]
            codes.append(c)
        return torch.stack(codes)  # (K', F)

    @torch.inference_mode()
    def decode_chunk(self, codes: Tensor) -> Tensor:
        """codes (K', F_chunk) -> waveform (output_channels, F_chunk * hop)."""
        z = self.codebooks[0][codes[0]]
        for i in range(1, codes.shape[0]):
            z = z + self.codebooks[i][codes[i]]  # (F, D)
        if self.norm is not None:
            z = (z - self.norm[0]) / self.norm[1]
        z = z.to(self.dtype)
        for op in self.dec_ops:
            z = op(z)
        return z.t().float()  # (T, C_out) -> (C_out, T)


class _GroupBlock:
    """AudioDec's multi-group block: repeat, grouped residual block, 1x1 conv."""

    def __init__(self, b: MultiGroupBlock):
        self.groups = b.groups
        self.block = _HiFiResBlock(b.block)
        self.w_out = _weight(b.conv_out)[:, :, 0].t().contiguous()  # (G C, C)

    def reset(self) -> None:
        self.block.reset()

    def __call__(self, x: Tensor) -> Tensor:
        return self.block(x.repeat(1, self.groups)) @ self.w_out  # (T, G C) -> (T, C)


class _MRF:
    """HiFi-GAN's multi-receptive-field fusion (mean of residual blocks)."""

    def __init__(self, b: MultiReceptiveField):
        self.blocks = [_HiFiResBlock(rb) for rb in b.blocks]

    def reset(self) -> None:
        for rb in self.blocks:
            rb.reset()

    def __call__(self, x: Tensor) -> Tensor:
        return torch.stack([rb(x) for rb in self.blocks]).mean(0)


class _HiFiGAN:
    """The causal HiFi-GAN vocoder on time-major buffers."""

    def __init__(self, gen: CausalHiFiGANGenerator):
        self.slope = gen.slope
        self.input_conv = _Conv(gen.input_conv)
        self.ups = [_ConvT(u) for u in gen.upsamples]
        self.blocks = [
            _GroupBlock(b) if isinstance(b, MultiGroupBlock) else _MRF(b) for b in gen.blocks
        ]
        self.output_conv = _Conv(gen.output_conv)

    def reset(self) -> None:
        for op in [self.input_conv, self.output_conv, *self.ups, *self.blocks]:
            op.reset()

    def __call__(self, x: Tensor) -> Tensor:
        x = self.input_conv(x)
        for up, block in zip(self.ups, self.blocks):
            x = block(up(F.leaky_relu(x, self.slope)))
        return torch.tanh(self.output_conv(F.leaky_relu(x, 0.01)))
