"""Fast streaming inference for AudioDec codecs: every causal layer as one GEMM on
time-major (T, C) buffers.

For small chunks (600 samples at 48 kHz) PyTorch's conv1d falls back to its generic
im2col kernels and spends most of the time outside arithmetic (23 ms per chunk for
the paper-size symAD on one core here, as the authors' code). :class:`StreamingAudioDec`
keeps one stream's signals as (T, C) matrices and runs

* a causal conv (kernel k, dilation d, stride s) as ``cols @ W``: each layer owns a
  buffer holding [left context; chunk] (the chunk written into it once, through the
  layer's input activation when it has one), ``cols`` (F, k C_in) is a strided view of
  it (copied to a reused matrix only for d > 1) and ``W[j C_in + c, o] = weight[o, c, j]``;
* a causal transposed conv (kernel 2 s) as ``[X_{t-1}, X_t] @ [W_1; W_0]`` giving
  (F, s C_out), i.e. F s output samples, with W_0 the first s taps and W_1 the last s
  (output sample m s + r mixes frame m with tap r and frame m - 1 with tap s + r);
  ``[X_{t-1}, X_t]`` is a strided view of the buffer [X_{-1}; X_0; ...; X_{F-1}];
* the residual 1x1 conv and skip as one fused GEMM + add; the RVQ as a distance GEMM
  per stage (float32).

The GEMMs with large weights (>= 64 K entries: the k-tap convs from 64 channels up)
use oneDNN with the weights reordered once into its blocked layout (``gemm="onednn"``,
the default where PyTorch has oneDNN): at 2 and 10 rows (the code-rate layers) that
measured 1.4-2.3x faster than ``torch.mm`` (MKL) on a Zen 4 core; the small ones keep
``torch.mm``, whose call overhead is ~10 us lower (``gemm="blas"``: ``torch.mm`` only). The result is numerically equal (to
float rounding) to the modules' ``encode_chunk`` / ``decode_chunk`` and hence to
whole-utterance ``encode`` / ``decode``. Weight norm is folded (the weights are copied
at construction), inference only, CPU, one stream per object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from codectk.models.audiodec import AudioDecAnalysis, AudioDecVocoder
from codectk.nn.audiodec_net import (
    AudioDecDecoder,
    CausalHiFiGANGenerator,
    MultiGroupBlock,
    MultiReceptiveField,
    ResidualUnit,
)
from codectk.nn.causal import CausalConv1d, CausalConvTranspose1d

GEMMS = ("onednn", "blas")
DTYPES = (torch.float32, torch.bfloat16)
_ROWS_HINT = 16  # oneDNN weight layout chosen for few rows (the slow, code-rate layers)
_ONEDNN_MIN_WEIGHTS = 65536  # smaller weights (the 1x1 and high-rate convs) use torch.mm


def onednn_available() -> bool:
    """Whether this PyTorch has the oneDNN linear ops (``torch.ops.mkldnn``)."""
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_reorder_linear_weight"
    )


def _weight(conv: torch.nn.Module) -> Tensor:
    """The (folded) weight of a conv, weight-normalised or not (a detached copy)."""
    return conv.weight.detach().clone()


def conv_gemm_weight(w: Tensor, groups: int) -> Tensor:
    """A causal conv's weight as the GEMM operand of its gathered taps (time-major).

    Args:
        w (Tensor): conv weight (C_out, C_in / g, k).
        groups (int): conv groups g.

    Returns:
        Tensor: (k C_in, C_out) with ``W[j C_in + c, o] = w[o, c, j]`` for g = 1, else
        (g, k C_in / g, C_out / g) for a batched GEMM over groups.
    """
    c_out, cin_g, k = w.shape
    if groups == 1:
        return w.permute(2, 1, 0).reshape(k * cin_g, c_out)
    wg = w.view(groups, c_out // groups, cin_g, k).permute(0, 3, 2, 1)  # (g, k, C_in/g, C_out/g)
    return wg.reshape(groups, k * cin_g, c_out // groups)


def convt_gemm_weight(w: Tensor, stride: int) -> Tensor:
    """A causal transposed conv's weight (kernel 2 s) as one GEMM operand.

    ``[X_{t-1}, X_t] @ W`` gives the s output samples of frame t: W = [W_1; W_0], W_0 the
    first s taps (applied to frame t), W_1 the last s (to frame t - 1).

    Args:
        w (Tensor): transposed-conv weight (C_in, C_out, 2 s).
        stride (int): s.

    Returns:
        Tensor: (2 C_in, s C_out).
    """
    c_in, c_out, _ = w.shape
    w0 = w[:, :, :stride].permute(0, 2, 1).reshape(c_in, stride * c_out)
    w1 = w[:, :, stride:].permute(0, 2, 1).reshape(c_in, stride * c_out)
    return torch.cat((w1, w0))


class _Linear:
    """y = x @ W (+ b) (+ other) for x (M, K) in ``dtype``, W (K, N).

    ``onednn``: W reordered once for oneDNN (``_linear_pointwise``, fused bias and add);
    ``blas``: ``torch.mm`` / ``addmm`` on W stored (K, N) contiguous.
    """

    def __init__(self, w: Tensor, bias: Tensor | None, dtype: torch.dtype, gemm: str):
        if w.numel() < _ONEDNN_MIN_WEIGHTS:
            gemm = "blas"  # oneDNN's ~10 us call overhead outweighs its gain on small W
        self.gemm = gemm
        self.n = w.shape[1]
        self.bias = None if bias is None else bias.detach().to(dtype).contiguous()
        if gemm == "onednn":
            wt = w.t().to(dtype).contiguous()  # (N, K)
            self.w = torch.ops.mkldnn._reorder_linear_weight(wt, _ROWS_HINT)
        else:
            self.w = w.to(dtype).contiguous()  # (K, N)

    def __call__(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        """x (M, K) -> (M, N); ``other`` (M, N) is added when given."""
        if self.gemm == "onednn":
            if other is None:
                return torch.ops.mkldnn._linear_pointwise(x, self.w, self.bias, "none", [], "")
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.w, self.bias, "add")
        if other is not None:
            y = torch.addmm(other, x, self.w)
            return y if self.bias is None else y.add_(self.bias)
        return x @ self.w if self.bias is None else torch.addmm(self.bias, x, self.w)


class _Act:
    """An activation written into a given output (ELU or LeakyReLU), or a copy."""

    def __init__(self, kind: str | None = None, slope: float = 0.0):
        self.kind, self.slope = kind, slope

    def into(self, x: Tensor, out: Tensor) -> None:
        if self.kind == "elu":
            torch._C._nn.elu(x, out=out)
        elif self.kind == "leaky_relu":
            torch._C._nn.leaky_relu(x, self.slope, out=out)
        else:
            out.copy_(x)

    def apply_(self, x: Tensor) -> Tensor:
        if self.kind == "elu":
            return F.elu_(x)
        if self.kind == "leaky_relu":
            return F.leaky_relu_(x, self.slope)
        return x


class _Conv:
    """One causal conv on time-major buffers, with its left context.

    The buffer holds ``fill`` unconsumed input rows (after ``act``) followed by the
    chunk; P = (k - 1) d zero rows at the start of a stream (the causal padding).
    """

    def __init__(self, layer, dtype: torch.dtype, gemm: str, act: _Act | None = None):
        conv = layer.conv if isinstance(layer, CausalConv1d) else layer
        w = _weight(conv)  # (C_out, C_in / g, k)
        self.groups = conv.groups
        self.c_out, cin_g, self.k = w.shape
        self.c_in = cin_g * self.groups
        self.d = conv.dilation[0]
        self.s = conv.stride[0]
        self.context = (self.k - 1) * self.d
        self.act = act or _Act()
        self.dtype = dtype
        bias = None if conv.bias is None else conv.bias.detach()
        if self.groups == 1:  # (k C_in, C_out)
            w2 = conv_gemm_weight(w, 1)
            self.lin: _Linear | None = _Linear(w2, bias, dtype, gemm)
        else:  # (g, k C_in/g, C_out/g) for a batched GEMM over groups
            self.wg = conv_gemm_weight(w, self.groups).to(dtype).contiguous()
            self.bias = None if bias is None else bias.to(dtype)
            self.lin = None
        self.win = _Window(self.c_in, dtype)
        self.cols: Tensor | None = None
        self.reset()

    def reset(self) -> None:
        self.win.reset(self.context)

    def __call__(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        """x (L, C_in) -> (F, C_out) [+ other (F, C_out)] for the frames completed."""
        if self.k == 1 and self.s == 1 and self.lin is not None:
            h = x
            if self.act.kind is not None:
                h = torch.empty_like(x)
                self.act.into(x, h)
            return self.lin(h, other)
        win = self.win
        self.act.into(x, win.append(x.shape[0]))
        n = win.hi - win.lo
        n_out = (n - self.context - 1) // self.s + 1
        if n_out <= 0:
            return x.new_zeros(0, self.c_out)
        c, off = self.c_in, win.lo * self.c_in
        if self.groups == 1:
            kc = self.k * c
            if self.d == 1:  # a window is k consecutive rows: one strided view
                cols = win.buf.as_strided((n_out, kc), (self.s * c, 1), off)
            else:  # (F, k, C_in) gathered into a reused (F, k C_in) matrix
                if self.cols is None or self.cols.shape[0] != n_out:
                    self.cols = torch.empty(n_out, kc, dtype=self.dtype)
                cols = self.cols
                cols.view(n_out, self.k, c).copy_(
                    win.buf.as_strided((n_out, self.k, c), (self.s * c, self.d * c, 1), off)
                )
            y = self.lin(cols, other)
        else:
            g, cg = self.groups, c // self.groups
            cols = win.buf.as_strided(
                (g, n_out, self.k, cg), (cg, self.s * c, self.d * c, 1), off
            ).reshape(g, n_out, self.k * cg)
            y = torch.bmm(cols, self.wg)  # (g, F, C_out / g)
            y = y.transpose(0, 1).reshape(n_out, self.c_out)  # (F, g, C_out/g) -> (F, C_out)
            if self.bias is not None:
                y = y + self.bias
            if other is not None:
                y = y + other
        win.lo += n_out * self.s  # consumed rows
        return y


class _Window:
    """A sliding window of rows (T, C) in a buffer: rows ``lo:hi`` are held; new rows
    are appended at ``hi``. The held rows move to the front only when the buffer end
    is reached (every few chunks), so there is no per-chunk shift or concatenation."""

    def __init__(self, c: int, dtype: torch.dtype, spare: int = 8):
        self.c, self.dtype, self.spare = c, dtype, spare
        self.buf = torch.zeros(0, c, dtype=dtype)
        self.lo = self.hi = 0

    def reset(self, rows: int) -> None:
        """Hold ``rows`` zero rows (the causal left padding)."""
        if self.buf.shape[0] < rows:
            self.buf = torch.zeros(rows, self.c, dtype=self.dtype)
        self.buf[:rows].zero_()
        self.lo, self.hi = 0, rows

    def append(self, n: int) -> Tensor:
        """Room for ``n`` new rows: returns the (n, C) view to write them into."""
        held = self.hi - self.lo
        if self.hi + n > self.buf.shape[0]:
            if held + n > self.buf.shape[0] or held > self.lo:  # grow (or cannot shift)
                grown = torch.empty(held + self.spare * max(n, 1), self.c, dtype=self.dtype)
                grown[:held] = self.buf[self.lo : self.hi]
                self.buf = grown
            else:  # move the held rows to the front (no overlap: held <= lo)
                self.buf[:held] = self.buf[self.lo : self.hi]
            self.lo, self.hi = 0, held
        self.hi += n
        return self.buf[self.hi - n : self.hi]


class _ConvT:
    """A causal transposed conv (kernel 2 s) on time-major buffers."""

    def __init__(self, layer: CausalConvTranspose1d, dtype: torch.dtype, gemm: str, act=None):
        w = _weight(layer.deconv)  # (C_in, C_out, 2 s)
        c_in, c_out, _ = w.shape
        s = layer.stride
        self.s, self.c_in, self.c_out = s, c_in, c_out
        bias = layer.deconv.bias
        bias = None if bias is None else bias.detach().repeat(s)  # (s C_out)
        self.lin = _Linear(convt_gemm_weight(w, s), bias, dtype, gemm)  # (2 C_in, s C_out)
        self.act = act or _Act()
        self.win = _Window(c_in, dtype)
        self.reset()

    def reset(self) -> None:
        self.win.reset(0)

    def __call__(self, x: Tensor) -> Tensor:
        """x (F, C_in) -> (F s, C_out)."""
        f = x.shape[0]
        if f == 0:
            return x.new_zeros(0, self.c_out)
        win = self.win
        if win.hi == win.lo:  # first chunk: replicate the first frame, as the padding
            rows = win.append(f + 1)
            self.act.into(x, rows[1:])
            rows[0] = rows[1]
        else:
            self.act.into(x, win.append(f))
        # rows [X_{m-1}, X_m] of the held frames X_{-1}, X_0, ..., X_{F-1}: (F, 2 C_in)
        xx = win.buf.as_strided((f, 2 * self.c_in), (self.c_in, 1), win.lo * self.c_in)
        y = self.lin(xx)
        win.lo = win.hi - 1  # keep the last frame
        return y.view(f * self.s, self.c_out)  # (F, s C_out) -> (F s, C_out)


class _ResUnit:
    """x + conv1x1(ELU(conv(ELU(x)))) with the skip fused into the last GEMM."""

    def __init__(self, unit: ResidualUnit, dtype: torch.dtype, gemm: str):
        self.conv1 = _Conv(unit.conv1, dtype, gemm, _Act("elu"))
        self.conv2 = _Linear(_weight(unit.conv2)[:, :, 0].t(), None, dtype, gemm)  # (C, C)

    def reset(self) -> None:
        self.conv1.reset()

    def __call__(self, x: Tensor) -> Tensor:
        if x.shape[0] == 0:
            return x
        h = F.elu_(self.conv1(x))
        return self.conv2(h, x)


class _HiFiResBlock:
    """Causal HiFi-GAN residual block (conv pairs with skips)."""

    def __init__(self, block, dtype: torch.dtype, gemm: str):
        act = _Act("leaky_relu", block.slope)
        self.convs1 = [_Conv(c, dtype, gemm, act) for c in block.convs1]
        self.convs2 = [_Conv(c, dtype, gemm, act) for c in block.convs2]

    def reset(self) -> None:
        for c in self.convs1 + self.convs2:
            c.reset()

    def __call__(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            y = c1(x)
            x = c2(y, x) if y.shape[0] else x
        return x


class StreamingAudioDec:
    """Chunk-by-chunk encoder and decoder of a trained ``symad`` or ``audiodec`` codec
    for one stream (see module doc).

    Args:
        codec (AudioDecAnalysis): a :class:`~codectk.models.audiodec.SymAD` or
            :class:`~codectk.models.audiodec.AudioDecVocoder` (weights are copied).
        dtype (torch.dtype): arithmetic of the encoder and decoder layers, float32 or
            bfloat16 (weights stored once in it; the RVQ search always runs in float32).
            ``torch.bfloat16`` roughly halves the GEMM time on CPUs with AVX512-BF16 /
            AMX at the cost of bf16 rounding (~1e-2 relative), so its codes and
            waveform are no longer identical to float32's.
        gemm (str | None): "onednn" (weights in oneDNN's layout) or "blas"
            (``torch.mm``); None picks onednn where PyTorch has it.

    Raises:
        TypeError: for another codec.
        ValueError: for another dtype or gemm, or onednn on a PyTorch without it.
    """

    def __init__(
        self,
        codec: AudioDecAnalysis,
        dtype: torch.dtype = torch.float32,
        gemm: str | None = None,
    ):
        if not isinstance(codec, AudioDecAnalysis):
            raise TypeError(
                f"StreamingAudioDec needs an AudioDec codec, got {type(codec).__name__}"
            )
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype} not supported; choose one of {list(DTYPES)}")
        gemm = gemm or ("onednn" if onednn_available() else "blas")
        if gemm not in GEMMS:
            raise ValueError(f"gemm {gemm!r} not supported; choose one of {list(GEMMS)}")
        if gemm == "onednn" and not onednn_available():
            raise ValueError("gemm 'onednn' needs a PyTorch built with oneDNN (mkldnn)")
        self.codec = codec
        self.dtype, self.gemm = dtype, gemm
        self.hop_length = codec.hop_length
        self.channels = codec.channels
        enc = codec.encoder
        self.enc_ops: list = [_Conv(enc.conv, dtype, gemm)]
        for block in enc.conv_blocks:
            self.enc_ops += [_ResUnit(u, dtype, gemm) for u in block.res_units]
            self.enc_ops.append(_Conv(block.conv, dtype, gemm))
        self.enc_ops.append(_Conv(codec.projector.project, dtype, gemm))
        embeds = [layer.codebook.embed.detach().float() for layer in codec.quantizer.layers]
        self.codebooks = torch.stack(embeds)  # (K, V, D)
        self.codebooks_t = [e.t().contiguous() for e in embeds]  # (D, V)
        self.codebook_norms = [e.pow(2).sum(1) for e in embeds]  # (V,)
        self.norm = None
        if isinstance(codec, AudioDecVocoder):
            self.norm = (codec.code_mean.detach().clone(), codec.code_scale.detach().clone())
        self.dec_ops = self._decoder_ops(codec.decoder)
        self.reset()

    def _decoder_ops(self, dec) -> list:
        dt, gemm = self.dtype, self.gemm
        if isinstance(dec, AudioDecDecoder):
            ops: list = [_Conv(dec.conv1, dt, gemm)]
            for block in dec.conv_blocks:
                ops.append(_ConvT(block.conv, dt, gemm))
                ops += [_ResUnit(u, dt, gemm) for u in block.res_units]
            ops.append(_Conv(dec.conv2, dt, gemm))
            return ops
        if isinstance(dec, CausalHiFiGANGenerator):
            return [_HiFiGAN(dec, dt, gemm)]
        raise TypeError(f"unsupported decoder {type(dec).__name__}")

    @torch.inference_mode()
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
        residual = x.float()  # (F, D)
        n = self.codec.quantizer.check_n_quantizers(n_quantizers)
        codes = torch.empty(n, residual.shape[0], dtype=torch.long)
        for i in range(n):
            # argmin_v ||r - e_v||^2 = argmin_v (||e_v||^2 - 2 r . e_v)
            score = torch.addmm(self.codebook_norms[i], residual, self.codebooks_t[i], alpha=-2)
            torch.argmin(score, dim=1, out=codes[i])
            if i + 1 < n:
                residual = residual - self.codebooks[i][codes[i]]
        return codes  # (K', F)

    @torch.inference_mode()
    def decode_chunk(self, codes: Tensor) -> Tensor:
        """codes (K', F_chunk) -> waveform (output_channels, F_chunk * hop)."""
        k = codes.shape[0]
        # sum over stages of codebook_i[codes_i]: (K', F, D) -> (F, D)
        z = self.codebooks[torch.arange(k)[:, None], codes].sum(0)
        if self.norm is not None:
            z = (z - self.norm[0]) / self.norm[1]
        z = z.to(self.dtype)
        for op in self.dec_ops:
            z = op(z)
        return z.t().float()  # (T, C_out) -> (C_out, T)


class _GroupBlock:
    """AudioDec's multi-group block: repeat, grouped residual block, 1x1 conv."""

    def __init__(self, b: MultiGroupBlock, dtype: torch.dtype, gemm: str):
        self.groups = b.groups
        self.block = _HiFiResBlock(b.block, dtype, gemm)
        self.out = _Linear(_weight(b.conv_out)[:, :, 0].t(), None, dtype, gemm)  # (G C, C)

    def reset(self) -> None:
        self.block.reset()

    def __call__(self, x: Tensor) -> Tensor:
        return self.out(self.block(x.repeat(1, self.groups)))  # (T, G C) -> (T, C)


class _MRF:
    """HiFi-GAN's multi-receptive-field fusion (mean of residual blocks)."""

    def __init__(self, b: MultiReceptiveField, dtype: torch.dtype, gemm: str):
        self.blocks = [_HiFiResBlock(rb, dtype, gemm) for rb in b.blocks]

    def reset(self) -> None:
        for rb in self.blocks:
            rb.reset()

    def __call__(self, x: Tensor) -> Tensor:
        return torch.stack([rb(x) for rb in self.blocks]).mean(0)


class _HiFiGAN:
    """The causal HiFi-GAN vocoder on time-major buffers."""

    def __init__(self, gen: CausalHiFiGANGenerator, dtype: torch.dtype, gemm: str):
        act = _Act("leaky_relu", gen.slope)
        self.input_conv = _Conv(gen.input_conv, dtype, gemm)
        self.ups = [_ConvT(u, dtype, gemm, act) for u in gen.upsamples]
        self.blocks = [
            _GroupBlock(b, dtype, gemm) if isinstance(b, MultiGroupBlock) else _MRF(b, dtype, gemm)
            for b in gen.blocks
        ]
        self.output_conv = _Conv(gen.output_conv, dtype, gemm, _Act("leaky_relu", 0.01))

    def reset(self) -> None:
        for op in [self.input_conv, self.output_conv, *self.ups, *self.blocks]:
            op.reset()

    def __call__(self, x: Tensor) -> Tensor:
        x = self.input_conv(x)
        for up, block in zip(self.ups, self.blocks):
            x = block(up(x))
        return torch.tanh(self.output_conv(x))
