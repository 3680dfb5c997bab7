"""What a training step reports, kept on the device until a logging step reads it.

Each step adds its loss parts, the values its finiteness checks looked at (losses and
gradient norms) and, where a fused optimizer skipped an update on the device, that
flag: one small tensor per step, stacked where it was made. :meth:`StepLog.read` moves
everything pending to the host in one transfer (one synchronisation per logging step,
instead of one per loss part per step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class StepRecord:
    """One training step's report, on the host.

    Attributes:
        step (int): the 1-based training step.
        utts (list[str]): the utterance ids of its batch (this rank's share).
        parts (dict[str, float]): loss parts and other logged numbers.
        checks (list[tuple[str, float]]): (what, value) of every finiteness check, in the
            order made ("generator loss", "discriminator gradient", ...).
        skipped (list[str]): the updates ("generator", "discriminator") that the
            optimizer skipped on the device for a non-finite value (on any rank).
    """

    step: int
    utts: list[str]
    parts: dict[str, float] = field(default_factory=dict)
    checks: list[tuple[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def nonfinite(self) -> list[tuple[str, float]]:
        """The checks whose value is NaN or infinite."""
        return [(what, v) for what, v in self.checks if not math.isfinite(v)]


class StepLog:
    """Pending step reports (see module doc)."""

    def __init__(self) -> None:
        self._pending: list[tuple] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        step: int,
        utts: list[str],
        parts: dict[str, Tensor | float],
        checks: list[tuple[str, Tensor]] = (),
        skips: list[tuple[str, Tensor]] = (),
    ) -> None:
        """Keep one step's report without reading any tensor.

        Args:
            step (int): the training step.
            utts (list[str]): its utterance ids.
            parts (dict[str, Tensor | float]): scalar loss parts (0-dim tensors, any
                device) or host numbers.
            checks (list[tuple[str, Tensor]]): (what, 0-dim value) of its finiteness checks.
            skips (list[tuple[str, Tensor]]): (update name, 0-dim flag: non-zero when the
                optimizer skipped that update).

        Raises:
            RuntimeError: a part, check or flag that is not a single number.
        """
        keys, host, tensors = [], {}, []
        for k, v in parts.items():
            if isinstance(v, Tensor):
                keys.append(k)
                tensors.append(v.detach().float().reshape(()))
            else:
                host[k] = float(v)
        tensors += [v.detach().float().reshape(()) for _, v in checks]
        tensors += [flag.detach().float().reshape(()) for _, flag in skips]
        vector = torch.stack(tensors) if tensors else None
        what = [w for w, _ in checks]
        names = [n for n, _ in skips]
        self._pending.append((step, list(utts), keys, host, what, names, vector))

    def read(self) -> list[StepRecord]:
        """Every pending report on the host, oldest first (one device-to-host copy),
        and forget them."""
        vectors = [p[-1] for p in self._pending if p[-1] is not None]
        if vectors:
            device = vectors[0].device
            flat = torch.cat([v.to(device) for v in vectors]).tolist()
        else:
            flat = []
        out, i = [], 0
        for step, utts, keys, host, what, names, vector in self._pending:
            n = 0 if vector is None else vector.numel()
            values, i = flat[i : i + n], i + n
            parts = dict(zip(keys, values[: len(keys)]))
            parts.update(host)
            checks = list(zip(what, values[len(keys) : len(keys) + len(what)]))
            flags = values[len(keys) + len(what) :]
            skipped = [name for name, f in zip(names, flags) if f != 0]
            out.append(StepRecord(step, utts, parts, checks, skipped))
        self._pending.clear()
        return out
