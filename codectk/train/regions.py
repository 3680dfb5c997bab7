"""How the trainer runs its networks on a step: which regions ``compile: true`` compiles,
whether real and fake audio go through a discriminator in one batch, and weight norm
computed once per phase.

* **Regions** (:func:`generator_regions`, :func:`discriminator_regions`): the generator's
  residual units and blocks (the innermost modules of its low-precision parts that hold
  two or more weight layers and no list of such blocks), each sub-discriminator (the
  outermost modules whose output is one list of tensors: feature maps then logits), and
  the spectral reconstruction losses. Each is compiled on its own
  (``nn.Module.compile``): blocks of one class and shape share a compiled graph, the
  quantizer (data-dependent draws, float32 island) and the glue between regions stay
  eager.
* **One batch for real and fake** (:func:`per_call_state`, :func:`split_batch`): a
  discriminator without per-call state gives, per example, the same outputs for
  ``cat([real, fake])`` as for the two calls, so each turn runs it once (half the weight
  normalisations, casts and kernel launches). Spectral norm (one power iteration per
  call in training), batch norm (batch statistics) and dropout (its draws) make the two
  differ: such a discriminator is called twice, as before.
* **Weight norm once per phase**: where the discriminator is called twice in a turn,
  :func:`torch.nn.utils.parametrize.cached` around the two calls computes each
  weight-normalised weight once; the backward pass through the cached weight sums both
  uses' gradients (checked with float64 in ``test/train/test_regions.py``).
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from codectk.errors import CodectkError

log = logging.getLogger(__name__)

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
DiscOutputs = list[list[Tensor]]


# ------------------------------------------------------------------ batching
def per_call_state(module: nn.Module) -> str | None:
    """Why ``module`` (a discriminator) must see real and fake in separate calls, or None.

    Args:
        module (nn.Module): the discriminator (in training mode).

    Returns:
        str | None: e.g. ``"spectral norm in discriminators.msd.discriminators.0.layers.0"``.
    """
    from torch.nn.utils.parametrizations import _SpectralNorm
    from torch.nn.utils.spectral_norm import SpectralNorm

    for name, m in module.named_modules():
        where = name or type(module).__name__
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return f"batch norm in {where}"
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return f"dropout in {where}"
        if any(isinstance(h, SpectralNorm) for h in m._forward_pre_hooks.values()):
            return f"spectral norm in {where}"
        if parametrize.is_parametrized(m):
            for plist in m.parametrizations.values():
                if any(isinstance(p, _SpectralNorm) for p in plist):
                    return f"spectral norm in {where}"
    return None


def split_batch(outs: DiscOutputs, b: int) -> tuple[DiscOutputs, DiscOutputs]:
    """Split a discriminator's outputs on ``cat([x, y])`` into those on ``x`` and ``y``.

    Args:
        outs (list[list[Tensor]]): outputs on a batch of 2 b examples (dim 0).
        b (int): examples in each half.

    Returns:
        tuple[list[list[Tensor]], list[list[Tensor]]]: views of the first and second
        halves, same structure.

    Raises:
        CodectkError: an output whose first dimension is not 2 b (the discriminator mixes
            examples: set ``discriminator_batch: none``).
    """
    first, second = [], []
    for k, sub in enumerate(outs):
        for i, t in enumerate(sub):
            if t.shape[0] != 2 * b:
                raise CodectkError(
                    f"discriminator output {k}.{i} has shape {tuple(t.shape)}, not a batch "
                    f"of {2 * b} first: it mixes examples; set discriminator_batch: none"
                )
        first.append([t[:b] for t in sub])
        second.append([t[b:] for t in sub])
    return first, second


def cached_weights(module: nn.Module) -> contextlib.AbstractContextManager:
    """``parametrize.cached()`` when ``module`` has no per-call state, else a no-op (a
    cached spectral norm would skip power iterations). Enter it around forward calls
    only: the cache must not outlive an optimizer step or a backward pass."""
    return contextlib.nullcontext() if per_call_state(module) else parametrize.cached()


# ------------------------------------------------------------------ regions
def _is_parametrization(name: str) -> bool:
    return "parametrizations" in name.split(".")


def weight_layers(module: nn.Module) -> int:
    """Modules in ``module`` (itself included) holding parameters of their own or a
    parametrized weight, the parametrizations' internals not counted."""
    n = 0
    for name, m in module.named_modules():
        if _is_parametrization(name):
            continue
        if parametrize.is_parametrized(m) or any(True for _ in m.parameters(recurse=False)):
            n += 1
    return n


def _holds_block_list(module: nn.Module) -> bool:
    """Whether ``module`` or a container inside it lists a block of >= 2 weight layers."""
    for name, m in module.named_modules():
        if not _is_parametrization(name) and isinstance(m, CONTAINERS):
            if any(weight_layers(c) >= 2 for c in m.children()):
                return True
    return False


def blocks(root: nn.Module) -> list[nn.Module]:
    """The innermost blocks under ``root``: modules (``nn.Sequential`` included) with >= 2
    weight layers and no container of such blocks inside; single layers are left out."""
    out: list[nn.Module] = []

    def expand(m: nn.Module) -> None:
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)):  # no forward of their own
            for c in m.children():
                expand(c)
        elif _holds_block_list(m):
            for c in m.children():
                expand(c)
        elif weight_layers(m) >= 2:
            out.append(m)

    for child in root.children():
        expand(child)
    if not out and weight_layers(root) >= 2 and not _holds_block_list(root):
        out.append(root)
    return out


def generator_regions(codec: nn.Module) -> list[tuple[str, nn.Module]]:
    """The generator's blocks in the submodules it runs in the compute dtype
    (``low_precision_modules()``; all but the quantizer where it names none).

    Returns:
        list[tuple[str, nn.Module]]: (qualified name, module), in module order.
    """
    names = list(getattr(codec, "low_precision_modules", list)())
    if not names:
        names = [n for n, _ in codec.named_children() if "quantizer" not in n]
    ids = {id(m): n for n, m in codec.named_modules()}
    out = []
    for name in names:
        for m in blocks(codec.get_submodule(name)):
            out.append((ids[id(m)], m))
    return out


def discriminator_regions(disc: nn.Module, example: Tensor) -> list[tuple[str, nn.Module]]:
    """Each sub-discriminator: the outermost modules whose output on ``example`` is one
    list of tensors, or a list of such lists made without any (a discriminator computing
    all its outputs in one body, e.g. SoundStream's STFT discriminator). Found with
    forward hooks on one call in eval mode, without gradients, so no state moves.

    Args:
        disc (nn.Module): the discriminator.
        example (Tensor): an input it accepts, (1, 1, T).

    Returns:
        list[tuple[str, nn.Module]]: (qualified name, module).
    """
    flat: set[int] = set()  # output: one list of tensors
    nested: set[int] = set()  # output: a list of such lists
    hooks = []

    def is_flat(output) -> bool:
        return (
            isinstance(output, (list, tuple))
            and bool(output)
            and all(isinstance(t, Tensor) for t in output)
        )

    def hook(module, args, output):
        if is_flat(output):
            flat.add(id(module))
        elif isinstance(output, (list, tuple)) and output and all(is_flat(o) for o in output):
            nested.add(id(module))

    for m in disc.modules():
        hooks.append(m.register_forward_hook(hook))
    training = disc.training
    try:
        disc.eval()
        with torch.no_grad():
            disc(example)
    finally:
        disc.train(training)
        for h in hooks:
            h.remove()
    out: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, m: nn.Module) -> None:
        for name, c in m.named_children():
            full = f"{prefix}.{name}" if prefix else name
            inner = any(id(d) in flat for d in c.modules() if d is not c)
            if id(c) in flat or (id(c) in nested and not inner):
                out.append((full, c))  # a sub-discriminator (or one made of one)
            else:
                walk(full, c)

    walk("", disc)
    return out


def loss_regions(loss: nn.Module) -> list[tuple[str, nn.Module]]:
    """The spectral reconstruction losses of a training objective (``mel_loss``,
    ``stft_loss``, ``freq_loss`` where present)."""
    names = ("mel_loss", "stft_loss", "freq_loss")
    return [(n, getattr(loss, n)) for n in names if isinstance(getattr(loss, n, None), nn.Module)]


def compile_regions(regions: list[tuple[str, nn.Module]]) -> None:
    """``nn.Module.compile()`` each region in place (state dict names unchanged).

    The per-code-object recompile limit is raised to cover every region (blocks of one
    class but different shapes or strides each compile once); validation runs them eagerly
    (``torch.compiler.set_stance("force_eager")``).
    """
    import torch._dynamo

    cfg = torch._dynamo.config
    cfg.recompile_limit = max(cfg.recompile_limit, 2 * len(regions) + 8)
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 4 * len(regions) + 64)
    for _, m in regions:
        m.compile()
    log.info("compile: %d regions: %s", len(regions), ", ".join(n for n, _ in regions))
