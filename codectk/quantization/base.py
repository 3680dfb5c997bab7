"""The quantizer contract (DESIGN.md, "Quantizer contract").

* **Float32 island** (:class:`QuantizerPart`): every quantization module declares
  ``float32_island = True`` once. Its ``forward``, ``encode`` and ``decode`` then run with
  autocast off and floating-point inputs raised to at least float32 (float64 stays), so
  training AMP (the trainer's autocast), bf16 inference
  (:meth:`codectk.models.base.Codec.set_inference_dtype`, which never casts an island) and
  streaming all leave the codebook search, the EMA and the losses in float32.
* **Ladder** (:class:`Quantizer`): the valid numbers of codebooks K' are the multiples of
  ``codebooks_per_step`` up to K (1 for RVQ and FSQ, the G groups of a GRVQ stage, the
  codebooks of an ESC stream). :meth:`Quantizer.check_n_quantizers`, a codec's
  ``bandwidths``, ``n_quantizers_for_bandwidth``, ``resolve_bandwidth``,
  ``codebooks_per_stream`` and ``check_codes`` derive from it.
* **Dropout**: one :class:`~codectk.quantization.dropout.QuantizerDropout` policy per
  quantizer, drawn by :meth:`Quantizer.sample_n_quantizers`.
* **Residual loop** (:func:`residual_loop`): SoundStream's Algorithm 1 with DAC's masks,
  shared by the EMA, factorized and grouped residual quantizers.
* **Sync-free switch** (``sync_free``: ``True``, ``False`` or ``"auto"`` = on CUDA, set
  on a whole model by :func:`set_sync_free`): a training forward reads nothing back from
  the device (no ``.item()``, ``bool()``, ``int()`` of a tensor, no CPU<->device copy).
  Where the sync-free form draws other random numbers than the authors' code, the exact
  form (their stream, compared by ``test/parity``) stays the CPU default; each such place
  says so in its docstring.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from codectk.errors import check_choice
from codectk.quantization.dropout import QuantizerDropout

SYNC_FREE_MODES = (True, False, "auto")


def at_least_float32(x):
    """``x`` raised to float32 if it is a lower-precision floating tensor; else ``x``."""
    if isinstance(x, Tensor) and x.is_floating_point() and x.dtype != torch.float64:
        return x.float()
    return x


def _island(fn: Callable) -> Callable:
    """``fn(self, *args)`` inside the float32 island of ``self`` (module doc)."""

    @functools.wraps(fn)
    def wrapped(self, *args, **kwargs):
        if not self.float32_island:
            return fn(self, *args, **kwargs)
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        args = tuple(at_least_float32(a) for a in args)
        if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
            return fn(self, *args, **kwargs)  # no autocast to leave (inner parts, eval, "meta")
        with torch.autocast(device, enabled=False):
            return fn(self, *args, **kwargs)

    wrapped.__codectk_island__ = True
    return wrapped


class QuantizerPart(nn.Module):
    """Base of every quantization module: the float32 island and the sync-free switch.

    Attributes:
        float32_island (bool): class attribute; True: ``forward``, ``encode`` and
            ``decode`` of the class and its subclasses run in float32 (module doc), and
            :meth:`codectk.models.base.Codec.set_inference_dtype` keeps the module's
            parameters and buffers in float32.
        sync_free (bool | str): ``True``, ``False`` or ``"auto"`` (on CUDA): the
            sync-free form of a training forward (module doc); :func:`set_sync_free`.
    """

    float32_island: ClassVar[bool] = True
    sync_free: bool | str = "auto"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "encode", "decode"):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "__codectk_island__", False):
                setattr(cls, name, _island(fn))

    def is_sync_free(self, device: torch.device) -> bool:
        """Whether a training forward on ``device`` takes the sync-free form."""
        mode = self.sync_free
        return mode is True or (mode == "auto" and device.type == "cuda")


class HostFlag:
    """A host-side mirror of a boolean buffer (``initialized``, ``stats_loaded``): the
    device is read only when the buffer changed since the last read (filled, loaded from
    a state dict, moved: a new tensor or a new version), not on every training forward."""

    def __init__(self):
        self._key: tuple[int, int] | None = None  # (id, version) of the tensor last read
        self._value = False

    def read(self, flag: Tensor) -> bool:
        """``bool(flag)``, from the mirror while ``flag`` is unchanged."""
        try:
            key = (id(flag), flag._version)
        except RuntimeError:  # an inference tensor keeps no version counter
            return bool(flag)
        if key != self._key:
            self._value, self._key = bool(flag), key
        return self._value

    def set(self, flag: Tensor, value: bool) -> None:
        """Fill ``flag`` with ``value`` and mirror it without a read."""
        flag.fill_(value)
        self._value, self._key = value, (id(flag), flag._version)


def is_float32_island(module: nn.Module) -> bool:
    """Whether ``module`` computes in float32 whatever the surrounding precision."""
    return bool(getattr(module, "float32_island", False))


def set_sync_free(module: nn.Module, mode: bool | str = "auto") -> nn.Module:
    """Set the sync-free switch of every quantization module inside ``module``.

    Args:
        module (nn.Module): a codec, a quantizer or any module holding them.
        mode (bool | str): ``True`` (sync-free on any device), ``False`` (the exact form:
            the authors' random streams, host reads where they need them) or ``"auto"``
            (sync-free on CUDA, the default).

    Returns:
        nn.Module: ``module``.

    Raises:
        ValueError: an unknown ``mode``.
    """
    check_choice("sync_free", mode, SYNC_FREE_MODES)
    mode = mode if mode == "auto" else bool(mode)  # 1 passes as True; is_sync_free tests `is`
    for m in module.modules():
        if isinstance(m, QuantizerPart):
            m.sync_free = mode
    return module


def seed_dropout_(module: nn.Module, seed: int, step: int) -> None:
    """Restart the sync-free host generators of every quantizer dropout policy inside
    ``module`` from (``seed``, ``step``): call it before each training step (every rank
    then draws the same per-batch K' without a broadcast, and a resumed run the same as
    an uninterrupted one)."""
    for name, m in module.named_modules():
        dropout = getattr(m, "dropout", None)
        if isinstance(dropout, QuantizerDropout):
            dropout.reseed(seed, step, name)


@dataclass
class QuantizerOutput:
    """What a quantizer's ``forward`` returns.

    Attributes:
        z_q (Tensor): quantised latents (B, D, F), straight-through gradient to z.
        codes (Tensor): LongTensor (B, K', F).
        commitment_loss (Tensor): scalar, ||r_i - sg(q_i)||^2 (VQ-VAE eq. 3, third term,
            without its weight beta), reduced over the stages as the family's code does.
        codebook_loss (Tensor): scalar, 0 for EMA codebooks (they are not trained by
            gradient).
        n_quantizers (int): K', the codebooks that ran.
        per_example (Tensor | None): LongTensor (B,), the codebooks each example used
            under per-example dropout (DAC); ``codes`` then holds all K' stages.
    """

    z_q: Tensor
    codes: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    n_quantizers: int
    per_example: Tensor | None = None


class Quantizer(QuantizerPart):
    """Base of the quantizers a codec holds: the ladder and the dropout policy.

    Args:
        n_codebooks (int): K, the most codebooks.
        codebook_size (int): codewords per codebook.
        codebooks_per_step (int): the ladder's step: K' must be a multiple of it.
        dropout (QuantizerDropout | None): the training dropout policy (None: none).

    Raises:
        ValueError: K < 1, K not a multiple of the step, or dropout choices off the ladder.
    """

    #: what one step of the ladder is called in messages ("stream" for ESC)
    step_name: ClassVar[str] = "step"

    def __init__(
        self,
        n_codebooks: int,
        codebook_size: int,
        codebooks_per_step: int = 1,
        dropout: QuantizerDropout | None = None,
    ):
        super().__init__()
        if n_codebooks < 1 or codebooks_per_step < 1 or n_codebooks % codebooks_per_step:
            raise ValueError(
                f"n_codebooks {n_codebooks} must be a positive multiple of "
                f"codebooks_per_step {codebooks_per_step}"
            )
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.codebooks_per_step = codebooks_per_step
        self.set_dropout_(dropout)

    def set_dropout_(self, dropout: QuantizerDropout | None) -> None:
        """Replace the dropout policy (a codec whose choices derive from its bitrates sets
        it after construction).

        Raises:
            ValueError: choices that are not on the ladder.
        """
        if dropout is not None:
            dropout.check(self.valid_n_quantizers)
        self.dropout = dropout

    @property
    def valid_n_quantizers(self) -> list[int]:
        """The ladder: the numbers of codebooks K' this quantizer offers, ascending."""
        g = self.codebooks_per_step
        return list(range(g, self.n_codebooks + 1, g))

    def check_n_quantizers(self, n_quantizers: int | None) -> int:
        """Resolve ``n_quantizers`` (None: all K).

        Returns:
            int: K'.

        Raises:
            ValueError: ``n_quantizers`` is not on the ladder; the message lists it.
        """
        if n_quantizers is None:
            return self.n_codebooks
        ladder = self.valid_n_quantizers
        if isinstance(n_quantizers, bool) or n_quantizers not in ladder:
            g = self.codebooks_per_step
            choices = (
                f"1 to {self.n_codebooks}"
                if g == 1
                else f"one of {ladder} (whole {self.step_name}s of {g} codebooks)"
            )
            raise ValueError(f"n_quantizers {n_quantizers} not supported; choose {choices}")
        return int(n_quantizers)

    def sample_n_quantizers(self, batch: int, device: torch.device) -> tuple[int, Tensor | None]:
        """The dropout policy's draw for a training batch (without a policy: all K).

        Args:
            batch (int): examples B.
            device (torch.device): the batch's device (sync-free on CUDA with "auto").

        Returns:
            tuple[int, Tensor | None]: K' (the codebooks that run) and, for per-example
            dropout, the counts K'_b (LongTensor (B,) on ``device``).
        """
        d, ladder = self.dropout, self.valid_n_quantizers
        if d is None:
            return self.n_codebooks, None
        sync_free = self.is_sync_free(device)
        if d.per_example:
            return self.n_codebooks, d.sample_per_example(batch, ladder, device, sync_free)
        return d.sample(ladder, device, sync_free), None

    def n_for_forward(self, z: Tensor, n_quantizers: int | None) -> tuple[int, Tensor | None]:
        """K' (and per-example counts) of a ``forward``: ``n_quantizers`` when given or
        in eval mode, else the dropout policy's draw."""
        if n_quantizers is None and self.training and self.dropout is not None:
            return self.sample_n_quantizers(z.shape[0], z.device)
        return self.check_n_quantizers(n_quantizers), None


class ResidualQuantizer(Quantizer):
    """A quantizer whose ``layers`` are residual stages, one codebook each (EMA and
    factorized RVQ): codes of the first K' stages (SoundStream Algorithm 1) and their
    sum, through :func:`residual_encode` and :func:`residual_decode`."""

    layers: nn.ModuleList

    def encode(self, z: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Codes of latents without touching the codebooks.

        Args:
            z (Tensor): (B, D, F).
            n_quantizers (int | None): K' (None: all K).

        Returns:
            Tensor: LongTensor (B, K', F).

        Raises:
            ValueError: for an ``n_quantizers`` outside 1..K.
        """
        return residual_encode(self.layers, z, self.check_n_quantizers(n_quantizers))

    def decode(self, codes: Tensor) -> Tensor:
        """Sum of the K' stages' codewords.

        Args:
            codes (Tensor): integer (B, K', F), 1 <= K' <= K.

        Returns:
            Tensor: z_q (B, D, F).

        Raises:
            ValueError: for a codes tensor that is not (B, K', F) with 1 <= K' <= K.
        """
        return residual_decode(self.layers, codes, self.n_codebooks)


def residual_loop(
    stages, z: Tensor, n: int, counts: Tensor | None = None, detach_residual: bool = False
) -> tuple[Tensor, Tensor, list[list[Tensor]]]:
    """Residual quantisation with ``stages[:n]`` (SoundStream Algorithm 1), optionally
    masked per example (DAC's ``ResidualVectorQuantize.forward``).

    y_hat = 0; r = z; for i < n: q_i = Q_i(r); y_hat += m_i q_i; r -= q_i, with the mask
    m_i = [K'_b > i] per example when ``counts`` are given (every stage runs on the whole
    batch and a stage no example uses gets zero gradients, not none), else 1.

    Args:
        stages: modules with ``forward(r (B, D, F), per_example: bool) -> (q (B, D, F),
            codes (B, F), *losses)``, the losses (B,) with ``per_example`` else scalars.
        z (Tensor): latent (B, D, F).
        n (int): stages to run.
        counts (Tensor | None): LongTensor (B,), codebooks K'_b per example (None: all n).
        detach_residual (bool): accumulate and subtract detached stage outputs
            (audiocraft ``core_vq.py:372-382``; the caller adds the straight-through sum).

    Returns:
        tuple: y_hat (B, D, F); codes LongTensor (B, n, F); per loss term, the list of its
        per-stage values (scalars; with ``counts`` the masked batch means
        mean_b(m_i,b loss_i,b)).
    """
    residual, z_q = z, torch.zeros_like(z)
    codes, terms = [], []
    for i, stage in enumerate(stages[:n]):
        q, c, *losses = stage(residual, per_example=counts is not None)
        if detach_residual:
            q = q.detach()
        if counts is None:
            z_q = z_q + q
        else:
            mask = (counts > i).to(z.dtype)  # (B,): stage i used by example b
            z_q = z_q + q * mask[:, None, None]
            losses = [(loss * mask).mean() for loss in losses]
        residual = residual - q
        codes.append(c)
        terms.append(losses)
    return z_q, torch.stack(codes, dim=1), [list(t) for t in zip(*terms)]  # (B, n, F)


def residual_encode(stages, z: Tensor, n: int) -> Tensor:
    """Codes (B, n, F) of latents (B, D, F) with ``stages[:n]`` (each with ``encode(r) ->
    (B, F)`` and ``decode``); never updates a codebook."""
    residual, codes = z, []
    for stage in stages[:n]:
        c = stage.encode(residual)
        residual = residual - stage.decode(c)
        codes.append(c)
    return torch.stack(codes, dim=1)  # n x (B, F) -> (B, n, F)


def residual_decode(stages, codes: Tensor, n_codebooks: int) -> Tensor:
    """Sum of the stages' codewords for codes (B, K', F), 1 <= K' <= ``n_codebooks``.

    Returns:
        Tensor: z_q (B, D, F).

    Raises:
        ValueError: for a codes tensor that is not (B, K', F) with 1 <= K' <= K.
    """
    if codes.dim() != 3 or not 1 <= codes.shape[1] <= n_codebooks:
        raise ValueError(
            f"codes must be (B, K', F) with 1 <= K' <= {n_codebooks}, got {tuple(codes.shape)}"
        )
    z_q = stages[0].decode(codes[:, 0])
    for i in range(1, codes.shape[1]):
        z_q = z_q + stages[i].decode(codes[:, i])
    return z_q
