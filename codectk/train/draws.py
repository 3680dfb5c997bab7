"""Random draws of the trainer computed in Python, without tensors.

A draw that only decides the host's control flow (does this step update the
discriminator?) must not make a tensor: on a GPU that would be a device round trip, and
the training step stays free of those outside logging steps (DESIGN.md). The draws below
give exactly the numbers that the torch expressions they replace gave, so runs and
resumed runs keep their old schedules.
"""

from __future__ import annotations

import random
import struct

_MASK32 = 0xFFFFFFFF


def torch_cpu_uniform(seed: int) -> float:
    """``torch.rand((), generator=torch.Generator().manual_seed(seed))`` as a Python float.

    torch's CPU generator is MT19937 seeded with the low 32 bits of ``seed``
    (``init_genrand``); a float32 uniform takes the low 24 bits of its first 32-bit output
    times 2^-24. Python's :class:`random.Random` runs the same MT19937, so its state is
    set to torch's seeded state and its first 32-bit output is used.

    Args:
        seed (int): the generator's seed (any non-negative integer).

    Returns:
        float: the draw in [0, 1), a multiple of 2^-24 (exactly representable in float32).
    """
    s = seed & _MASK32
    state = [s]
    for j in range(1, 624):  # MT19937 init_genrand, as torch's mt19937(seed)
        s = (1812433253 * (s ^ (s >> 30)) + j) & _MASK32
        state.append(s)
    rng = random.Random()
    rng.setstate((3, (*state, 624), None))  # index 624: the first output twists the state
    return (rng.getrandbits(32) & 0xFFFFFF) * 2.0**-24


def as_float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (how torch compares a float32 tensor with a
    Python number)."""
    return struct.unpack("f", struct.pack("f", x))[0]
