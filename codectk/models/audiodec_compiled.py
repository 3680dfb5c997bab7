"""AudioDec streaming compiled by ``torch.compile``: fixed-length chunks, state passed
explicitly, the whole encoder and the whole decoder each one generated C++ program.

:class:`~codectk.models.audiodec_stream.StreamingAudioDec` (the "fast" engine) runs each
layer as a few PyTorch calls from Python: about 250 calls per 12.5 ms chunk of the
paper-size 48 kHz symAD, each with a fixed cost (dispatch, MKL / oneDNN set-up) of the
order of the arithmetic of the small layers. :class:`CompiledStreamingAudioDec` writes
one chunk step as a pure function of (chunk, state) with every shape fixed by the chunk
length, and compiles it with TorchInductor (``freezing``: weights folded in as
constants and pre-packed for oneDNN; ``max_autotune`` with the C++ GEMM template: each
GEMM timed against its generated micro-kernel; ``cpp_wrapper``: no Python between the
kernels). Element-wise work (ELU, LeakyReLU, the context windows, the RVQ) is fused into
the generated loops.

The layers compute what the modules' ``encode_chunk`` / ``decode_chunk`` compute, on
time-major (T, C) rows:

* causal conv (kernel k, dilation d, stride s): the state is the last (k - 1) d rows of
  its (activated) input, zeros at the start of a stream; ``cols`` (F, k C_in) gathers the
  k taps of each output frame and the conv is ``cols @ W`` with
  ``W[j C_in + c, o] = weight[o, c, j]`` (grouped convs: one GEMM per group);
* causal transposed conv (kernel 2 s): ``[X_{t-1}, X_t] @ [W_1; W_0]`` gives (F, s C_out)
  = F s output samples (W_0: the first s taps, W_1: the last s); the state is the last
  input frame, the first frame itself at the start of a stream (the modules' replicate
  padding);
* residual VQ: nearest codeword by ``||e||^2 - 2 r . e`` per stage, in float32.

Every chunk must hold the same number of samples, a multiple of the hop length (then
every layer's input is a whole number of its strides and the state never changes shape).
Compiling the paper-size 48 kHz symAD took about 2 minutes on the 2-core development
CPU the first time (autotuning included) and 35 to 45 s in later processes (the
autotuning results are cached on disk; freezing makes the generated code specific to
the weights, so the graphs themselves are compiled again). It needs a C++ compiler.
Inference only, CPU, one stream per object.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import CodectkError
from codectk.models.audiodec import AudioDecAnalysis, AudioDecVocoder
from codectk.models.audiodec_stream import conv_gemm_weight, convt_gemm_weight
from codectk.nn.audiodec_net import (
    AudioDecDecoder,
    CausalHiFiGANGenerator,
    MultiGroupBlock,
    MultiReceptiveField,
    ResidualUnit,
)
from codectk.nn.causal import CausalConv1d, CausalConvTranspose1d

DTYPES = (torch.float32, torch.bfloat16)
COMPILE_ERRORS = ("InvalidCxxCompiler", "CppCompileError", "C++ compiler", "BackendCompilerFailed")


def _param(t: Tensor) -> nn.Parameter:
    """A frozen parameter (``freezing`` folds parameters of the compiled module)."""
    return nn.Parameter(t.detach().clone().contiguous(), requires_grad=False)


def _act(x: Tensor, kind: str | None, slope: float) -> Tensor:
    if kind == "elu":
        return F.elu(x)
    if kind == "leaky_relu":
        return F.leaky_relu(x, slope)
    return x


class _Step(nn.Module):
    """A layer with streaming state: ``forward(x, states, new)`` reads its state at
    ``states[self.slot]`` and writes its next state to ``new[self.slot]``."""

    slot: int = -1

    def init_state(self) -> Tensor:
        raise NotImplementedError


class _Conv(_Step):
    """A causal conv (see module doc); ``act`` is applied to its input."""

    def __init__(self, layer, dtype: torch.dtype, act: str | None = None, slope: float = 0.0):
        super().__init__()
        conv = layer.conv if isinstance(layer, CausalConv1d) else layer
        w = conv.weight.detach()  # (C_out, C_in / g, k)
        self.groups = conv.groups
        self.c_out, cin_g, self.k = w.shape
        self.c_in = cin_g * self.groups
        self.d, self.s = conv.dilation[0], conv.stride[0]
        self.context = (self.k - 1) * self.d
        self.act, self.slope, self.dtype = act, slope, dtype
        # (k C_in, C_out), or (g, k C_in/g, C_out/g) for grouped convs
        self.weight = _param(conv_gemm_weight(w, self.groups).to(dtype))
        self.bias = None if conv.bias is None else _param(conv.bias.to(dtype))

    def init_state(self) -> Tensor:
        return torch.zeros(self.context, self.c_in, dtype=self.dtype)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        """x (L, C_in) -> (L / s, C_out)."""
        h = _act(x, self.act, self.slope)
        buf = torch.cat((states[self.slot], h)) if self.context else h
        n_out = (buf.shape[0] - self.context - 1) // self.s + 1
        new[self.slot] = buf[n_out * self.s :] if self.context else states[self.slot]
        span = (n_out - 1) * self.s + 1
        taps = [buf[j * self.d : j * self.d + span : self.s] for j in range(self.k)]
        cols = torch.cat(taps, 1) if self.k > 1 else buf[: span : self.s]  # (F, k C_in)
        if self.groups == 1:
            y = cols @ self.weight
        else:
            g, cg = self.groups, self.c_in // self.groups
            cols = cols.view(n_out, self.k, g, cg).permute(2, 0, 1, 3).reshape(g, n_out, -1)
            y = torch.bmm(cols, self.weight).transpose(0, 1).reshape(n_out, self.c_out)
        return y if self.bias is None else y + self.bias


class _ConvT(_Step):
    """A causal transposed conv (kernel 2 s, see module doc); ``act`` on its input."""

    def __init__(self, layer: CausalConvTranspose1d, dtype, act: str | None = None, slope=0.0):
        super().__init__()
        w = layer.deconv.weight.detach()  # (C_in, C_out, 2 s)
        self.c_in, self.c_out, _ = w.shape
        s = self.s = layer.stride
        self.weight = _param(convt_gemm_weight(w, s).to(dtype))  # (2 C_in, s C_out)
        b = layer.deconv.bias
        self.bias = None if b is None else _param(b.repeat(s).to(dtype))
        self.act, self.slope, self.dtype = act, slope, dtype

    def init_state(self) -> Tensor:
        # row 0: the previous frame; row 1, column 0: 1 once the stream has started
        return torch.zeros(2, self.c_in, dtype=self.dtype)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        """x (F, C_in) -> (F s, C_out)."""
        h = _act(x, self.act, self.slope)
        st = states[self.slot]
        prev = torch.where(st[1:2, :1] > 0, st[:1], h[:1])  # replicate padding at the start
        new[self.slot] = torch.cat((h[-1:], torch.ones_like(st[1:2])))
        xx = torch.cat((torch.cat((prev, h[:-1])), h), 1)  # (F, 2 C_in): [X_{t-1}, X_t]
        y = xx @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.view(-1, self.c_out)


class _ResUnit(nn.Module):
    def __init__(self, unit: ResidualUnit, dtype: torch.dtype):
        super().__init__()
        self.conv1 = _Conv(unit.conv1, dtype, "elu")
        self.conv2 = _param(unit.conv2.weight[:, :, 0].t().to(dtype))  # (C, C)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        return x + F.elu(self.conv1(x, states, new)) @ self.conv2


class _HiFiResBlock(nn.Module):
    def __init__(self, block, dtype: torch.dtype):
        super().__init__()
        self.pairs = nn.ModuleList(
            nn.ModuleList(
                (
                    _Conv(c1, dtype, "leaky_relu", block.slope),
                    _Conv(c2, dtype, "leaky_relu", block.slope),
                )
            )
            for c1, c2 in zip(block.convs1, block.convs2)
        )

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        for c1, c2 in self.pairs:
            x = x + c2(c1(x, states, new), states, new)
        return x


class _GroupBlock(nn.Module):
    def __init__(self, b: MultiGroupBlock, dtype: torch.dtype):
        super().__init__()
        self.groups = b.groups
        self.block = _HiFiResBlock(b.block, dtype)
        self.out = _param(b.conv_out.weight[:, :, 0].t().to(dtype))  # (G C, C)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        return self.block(x.repeat(1, self.groups), states, new) @ self.out


class _MRF(nn.Module):
    def __init__(self, b: MultiReceptiveField, dtype: torch.dtype):
        super().__init__()
        self.blocks = nn.ModuleList(_HiFiResBlock(rb, dtype) for rb in b.blocks)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        return torch.stack([rb(x, states, new) for rb in self.blocks]).mean(0)


class _HiFiGAN(nn.Module):
    def __init__(self, gen: CausalHiFiGANGenerator, dtype: torch.dtype):
        super().__init__()
        self.input_conv = _Conv(gen.input_conv, dtype)
        self.ups = nn.ModuleList(_ConvT(u, dtype, "leaky_relu", gen.slope) for u in gen.upsamples)
        self.blocks = nn.ModuleList(
            _GroupBlock(b, dtype) if isinstance(b, MultiGroupBlock) else _MRF(b, dtype)
            for b in gen.blocks
        )
        self.output_conv = _Conv(gen.output_conv, dtype, "leaky_relu", 0.01)

    def forward(self, x: Tensor, states: list[Tensor], new: list[Tensor]) -> Tensor:
        x = self.input_conv(x, states, new)
        for up, block in zip(self.ups, self.blocks):
            x = block(up(x, states, new), states, new)
        return torch.tanh(self.output_conv(x, states, new))


def _codebooks(codec: AudioDecAnalysis) -> Tensor:
    """The RVQ codebooks of ``codec``, float32 (K, V, D)."""
    return torch.stack([layer.codebook.embed.detach().float() for layer in codec.quantizer.layers])


def _number_slots(net: nn.Module) -> list[_Step]:
    """Number the stateful layers of ``net`` (their slots in the state list)."""
    steps = [m for m in net.modules() if isinstance(m, _Step)]
    for i, m in enumerate(steps):
        m.slot = i
    return steps


class _EncoderStep(nn.Module):
    """(wav chunk (C_in, L), states) -> (codes (K', L / hop), new states)."""

    def __init__(self, codec: AudioDecAnalysis, dtype: torch.dtype, n_quantizers: int):
        super().__init__()
        enc = codec.encoder
        ops: list[nn.Module] = [_Conv(enc.conv, dtype)]
        for block in enc.conv_blocks:
            ops += [_ResUnit(u, dtype) for u in block.res_units]
            ops.append(_Conv(block.conv, dtype))
        ops.append(_Conv(codec.projector.project, dtype))
        self.ops = nn.ModuleList(ops)
        self.steps = _number_slots(self.ops)
        embeds = _codebooks(codec)[:n_quantizers]  # (K', V, D)
        self.codebooks = _param(embeds)
        self.codebooks_t = _param(embeds.transpose(1, 2))  # (K', D, V)
        self.codebook_norms = _param(embeds.pow(2).sum(2))  # (K', V)
        self.dtype = dtype

    def forward(self, wav: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        new: list[Tensor] = list(states)
        x = wav.t().to(self.dtype)
        for op in self.ops:
            x = op(x, states, new)
        residual = x.float()  # (F, D)
        codes = []
        for i in range(self.codebooks.shape[0]):
            score = torch.addmm(self.codebook_norms[i], residual, self.codebooks_t[i], alpha=-2)
            c = score.argmin(1)
            codes.append(c)
            residual = residual - self.codebooks[i][c]
        return torch.stack(codes), new


class _DecoderStep(nn.Module):
    """(codes (K', F), states) -> (waveform (C_out, F hop), new states)."""

    def __init__(self, codec: AudioDecAnalysis, dtype: torch.dtype):
        super().__init__()
        self.codebooks = _param(_codebooks(codec))  # (K, V, D)
        self.norm = isinstance(codec, AudioDecVocoder)
        if self.norm:
            self.code_mean = _param(codec.code_mean)
            self.code_scale = _param(codec.code_scale)
        dec = codec.decoder
        if isinstance(dec, AudioDecDecoder):
            ops: list[nn.Module] = [_Conv(dec.conv1, dtype)]
            for block in dec.conv_blocks:
                ops.append(_ConvT(block.conv, dtype))
                ops += [_ResUnit(u, dtype) for u in block.res_units]
            ops.append(_Conv(dec.conv2, dtype))
            self.ops = nn.ModuleList(ops)
        elif isinstance(dec, CausalHiFiGANGenerator):
            self.ops = nn.ModuleList([_HiFiGAN(dec, dtype)])
        else:
            raise TypeError(f"unsupported decoder {type(dec).__name__}")
        self.steps = _number_slots(self.ops)
        self.dtype = dtype

    def forward(self, codes: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        new: list[Tensor] = list(states)
        k = codes.shape[0]
        z = self.codebooks[torch.arange(k, device=codes.device)[:, None], codes].sum(0)  # (F, D)
        if self.norm:
            z = (z - self.code_mean) / self.code_scale
        x = z.to(self.dtype)
        for op in self.ops:
            x = op(x, states, new)
        return x.t().float(), new


class CompiledStreamingAudioDec:
    """Chunk-by-chunk encoder and decoder of a trained ``symad`` or ``audiodec`` codec,
    compiled for one chunk length (see module doc). Same API as
    :class:`~codectk.models.audiodec_stream.StreamingAudioDec`.

    Args:
        codec (AudioDecAnalysis): a SymAD or AudioDecVocoder in eval mode with weight
            norm folded (weights are copied).
        chunk_length (int): samples per chunk, a positive multiple of ``hop_length``.
        dtype (torch.dtype): float32 (equal to the modules to float rounding) or
            bfloat16 (layers in bf16, the RVQ in float32; lossy, measured cost in the
            README's AudioDec section).
        n_quantizers (int | None): codebooks used by the encoder (None: all).
        autotune (bool): time TorchInductor's generated GEMMs against oneDNN / MKL per
            layer and keep the faster (minutes on the first compile; cached on disk).

    Raises:
        TypeError: another codec or decoder.
        ValueError: another dtype, or a chunk length that is not a multiple of the hop.
        CodectkError: torch.compile cannot run here (no C++ compiler); the message names
            the cause. Use ``StreamingAudioDec`` then.
    """

    def __init__(
        self,
        codec: AudioDecAnalysis,
        chunk_length: int,
        dtype: torch.dtype = torch.float32,
        n_quantizers: int | None = None,
        autotune: bool = True,
    ):
        if not isinstance(codec, AudioDecAnalysis):
            raise TypeError(
                f"CompiledStreamingAudioDec needs an AudioDec codec, got {type(codec).__name__}"
            )
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype} not supported; choose one of {list(DTYPES)}")
        hop = codec.hop_length
        if chunk_length <= 0 or chunk_length % hop:
            raise ValueError(
                f"chunk_length {chunk_length} must be a positive multiple of the hop length {hop}"
            )
        self.codec, self.dtype, self.chunk_length = codec, dtype, chunk_length
        self.hop_length, self.channels = hop, codec.channels
        self.n_quantizers = codec.quantizer.check_n_quantizers(n_quantizers)
        with torch.no_grad():
            self.encoder = _EncoderStep(codec, dtype, self.n_quantizers).eval()
            self.decoder = _DecoderStep(codec, dtype).eval()
        self._options = {
            "freezing": True,
            "cpp_wrapper": True,
            "max_autotune": autotune,
            "max_autotune_gemm_backends": "CPP,ATEN",
        }
        self._wav = torch.zeros(self.channels, chunk_length)
        self._codes = torch.zeros(self.n_quantizers, chunk_length // hop, dtype=torch.long)
        self._encode = torch.compile(self.encoder, dynamic=False, fullgraph=True)
        self._decode = torch.compile(self.decoder, dynamic=False, fullgraph=True)
        self.compile_seconds = self._warm_up()
        self.reset()

    def _warm_up(self) -> float:
        """Compile both steps on two silent chunks (errors surface here, not mid-stream;
        the second chunk's state has the strides of every later one)."""
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        t0 = time.perf_counter()
        self.reset()
        silence = torch.zeros(self.channels, self.chunk_length)
        try:
            # freezing guards the compiled code on these weights: every engine (e.g. one
            # per precision) is one more compile of the same functions, within the limit
            limit = max(dynamo_config.recompile_limit, 64)
            with inductor_config.patch(self._options), dynamo_config.patch(recompile_limit=limit):
                for _ in range(2):
                    self.decode_chunk(self.encode_chunk(silence))
        except Exception as e:  # torch raises several types for a failed C++ build
            text = f"{type(e).__name__}: {e}"
            if any(m in text for m in COMPILE_ERRORS):
                raise CodectkError(
                    "the compiled AudioDec engine needs torch.compile with a working C++ "
                    f"compiler ({text.strip().splitlines()[0][:300]}); use the fast engine"
                ) from e
            raise
        return time.perf_counter() - t0

    @torch.inference_mode()
    def reset(self) -> None:
        """Start a new stream (zero every layer's context)."""
        self.enc_states = [m.init_state() for m in self.encoder.steps]
        self.dec_states = [m.init_state() for m in self.decoder.steps]

    @torch.inference_mode()
    def encode_chunk(self, wav: Tensor) -> Tensor:
        """wav (input_channels, chunk_length) -> codes (K', chunk_length / hop).

        Raises:
            ValueError: wav not (input_channels, chunk_length).
        """
        if wav.dim() != 2 or wav.shape[0] != self.channels or wav.shape[1] != self.chunk_length:
            raise ValueError(
                f"wav must be ({self.channels}, {self.chunk_length}), got {tuple(wav.shape)}"
            )
        self._wav.copy_(wav)  # one input buffer: the compiled code is specialised on strides
        codes, self.enc_states = self._encode(self._wav, self.enc_states)
        return codes

    @torch.inference_mode()
    def decode_chunk(self, codes: Tensor) -> Tensor:
        """codes (K, chunk_length / hop) -> waveform (output_channels, chunk_length).

        Raises:
            ValueError: codes of another shape.
        """
        frames = self.chunk_length // self.hop_length
        if codes.shape != (self.n_quantizers, frames):
            raise ValueError(
                f"codes must be ({self.n_quantizers}, {frames}), got {tuple(codes.shape)}"
            )
        self._codes.copy_(codes)
        wav, self.dec_states = self._decode(self._codes, self.dec_states)
        return wav
