"""The streaming contract of codectk's causal layers (DESIGN.md, "Streaming").

A stateful causal layer is a :class:`StreamingModule` (the causal
:class:`~codectk.nn.conv.SConv1d` and :class:`~codectk.nn.conv.SConvTranspose1d`, the
unidirectional :class:`~codectk.nn.lstm.SLSTM`). It has

* ``init_state(batch)``: its state at the start of a stream, of a fixed shape: zero
  tensors (a conv's left padding, an LSTM's hidden and cell state), plus, for layers
  whose start depends on the first samples (replicate / reflect padding), an int
  counting the samples seen so far (0);
* ``forward_chunk(x, state, final=False) -> (y, state)``: a pure function; the outputs
  of consecutive chunks, concatenated, equal ``forward`` of the concatenated inputs;
* ``forward(x)``: one chunk from the initial state (the whole utterance), computed by the
  layer's whole-utterance path; inside :func:`stream_step` it runs ``forward_chunk`` on
  the state the step holds for the layer instead.

Containers (residual units, SEANet, AudioDec's networks, a codec) need no streaming code
of their own: :func:`stream_step` runs any function of the module tree -- the codec's
own ``encode`` or ``decode`` -- with every stateful layer reading and replacing its
entry of a state dict made by :func:`init_states`. The step is a pure function of
(inputs, states), which ``torch.compile`` traces whole (the active step is a module
global that dynamo follows). Layers that are not stateful must be pointwise in time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

State = Any  # a Tensor, or a tuple of Tensors and ints (see each layer)

_KEYS = itertools.count()


class _Step:
    """The states of one streaming step: read and replaced by the layers it runs."""

    def __init__(self, states: dict[str, State], final: bool):
        self.states = dict(states)
        self.final = final


_ACTIVE: _Step | None = None


class StreamingModule(nn.Module):
    """Base of the stateful causal layers (see module doc). Subclasses implement
    :meth:`init_state` and :meth:`forward_chunk`, and start ``forward`` with
    ``if streaming(): return self.stream(x)``."""

    stream_key: str | None = None  # the layer's entry in a state dict (init_states)

    def init_state(self, batch: int) -> State:
        """The state at the start of a stream for ``batch`` signals (zeros, on the
        layer's device and in its parameters' dtype)."""
        raise NotImplementedError

    def forward_chunk(self, x: Tensor, state: State, final: bool = False) -> tuple[Tensor, State]:
        """Process the next chunk; ``final``: no more input follows (the end of the
        stream, for layers that wait for look-ahead at the start)."""
        raise NotImplementedError

    def started(self, state: State) -> bool:
        """Whether ``state`` is past the stream's start (every later state has the same
        structure); layers without a start-up phase always are."""
        return True

    def check_streamable(self) -> None:
        """Raise ``ValueError`` saying why this layer cannot stream (e.g. not causal)."""

    def stream(self, x: Tensor) -> Tensor:
        """``forward_chunk`` on this layer's state in the active :func:`stream_step`.

        Raises:
            RuntimeError: the step holds no state for this layer.
        """
        step = _ACTIVE
        key = self.stream_key
        if step is None or key is None or key not in step.states:
            raise RuntimeError(
                f"{type(self).__name__} has no state in this streaming step: build the "
                "states with init_states() on a module that contains it"
            )
        y, step.states[key] = self.forward_chunk(x, step.states[key], step.final)
        return y


def streaming() -> bool:
    """Whether a :func:`stream_step` is running."""
    return _ACTIVE is not None


def stream_modules(root: nn.Module) -> list[tuple[str, StreamingModule]]:
    """The stateful layers under ``root`` (qualified names, module order)."""
    return [(n, m) for n, m in root.named_modules() if isinstance(m, StreamingModule)]


def init_states(root: nn.Module, batch: int = 1) -> dict[str, State]:
    """The start-of-stream states of every stateful layer under ``root``.

    Each layer gets a ``stream_key`` unique in the process (kept once given; a module
    copied with its key inside the same tree gets a new one).

    Args:
        root (nn.Module): a network or a codec.
        batch (int): signals streamed together (B).

    Returns:
        dict[str, State]: ``stream_key`` -> the layer's ``init_state(batch)``.
    """
    states: dict[str, State] = {}
    for name, m in stream_modules(root):
        if m.stream_key is None or m.stream_key in states:
            m.stream_key = f"{name or type(m).__name__}#{next(_KEYS)}"
        states[m.stream_key] = m.init_state(batch)
    return states


def states_started(root: nn.Module, states: dict[str, State]) -> bool:
    """Whether every layer of ``root`` with an entry in ``states`` is past its start."""
    return all(
        m.started(states[m.stream_key]) for _, m in stream_modules(root) if m.stream_key in states
    )


def stream_step(
    fn: Callable[..., Any], states: dict[str, State], *args: Any, final: bool = False, **kwargs: Any
) -> tuple[Any, dict[str, State]]:
    """Run ``fn(*args, **kwargs)`` as one streaming step.

    Every stateful layer that ``fn`` calls runs ``forward_chunk`` on its entry of
    ``states`` (see module doc); ``states`` itself is not modified.

    Args:
        fn: e.g. ``codec.encode`` or ``codec.decode``.
        states (dict[str, State]): from :func:`init_states` or the previous step.
        *args, **kwargs: arguments of ``fn``.
        final (bool): the last step of the stream (see
            :meth:`StreamingModule.forward_chunk`).

    Returns:
        tuple[Any, dict[str, State]]: what ``fn`` returns and the states after the step.
    """
    global _ACTIVE
    previous = _ACTIVE
    step = _Step(states, final)
    _ACTIVE = step
    try:
        out = fn(*args, **kwargs)
    finally:
        _ACTIVE = previous
    return out, step.states


def check_streamable(root: nn.Module, name: str = "") -> None:
    """Refuse modules that cannot stream: a stateful layer that is not causal, or a layer
    with a receptive field in time that is not a :class:`StreamingModule`.

    Leaves are accepted when they are pointwise in time (activations, ``Identity``,
    ``Linear``, a 1x1 stride-1 ``Conv1d``, ...); stateful layers judge themselves
    (:meth:`StreamingModule.check_streamable`).

    Args:
        root (nn.Module): the network (or codec part) to stream.
        name (str): its name in messages.

    Raises:
        ValueError: naming the first offending module and why.
    """
    where = name or type(root).__name__
    inside: list[str] = []  # stateful layers' names: their children are their business
    for sub, m in root.named_modules():
        label = f"{where}.{sub}" if sub else where
        if any(sub.startswith(p + ".") for p in inside):
            continue
        if isinstance(m, StreamingModule):
            inside.append(sub)
            try:
                m.check_streamable()
            except ValueError as e:
                raise ValueError(f"{label}: {e}") from None
        elif isinstance(m, nn.Conv1d) and m.kernel_size == (1,) and m.stride == (1,):
            if m.padding not in ((0,), "valid"):
                raise ValueError(f"{label}: a padded 1x1 Conv1d cannot stream")
        elif isinstance(m, _TEMPORAL):
            raise ValueError(f"{label}: {type(m).__name__} mixes frames and cannot stream")


# layers that see several frames (a stateful layer wrapping one is fine)
_TEMPORAL = (
    nn.modules.conv._ConvNd,
    nn.modules.rnn.RNNBase,
    nn.GroupNorm,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.MultiheadAttention,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._MaxPoolNd,
)
