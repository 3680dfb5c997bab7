"""Quantizer dropout: how many codebooks K' a training batch, or each example, uses.

One policy serves every family; its options reproduce each family's draw:

* per batch, codectk's SoundStream (Zeghidour et al. 2021, §III-C; one K' per batch keeps
  codes rectangular), HiFi-Codec stages, ESC streams (the authors' ``quantization_dropout``):
  a coin ``torch.rand(()) < probability``, then K' uniform over the choices;
* EnCodec (Défossez et al. 2023, §3.2): the codebook counts of the target bandwidths,
  or audiocraft's K' uniform in 1..K (``quantization/vq.py:78-79``); the coin is not tossed
  when the probability is 1 (``coin: "uncertain"``);
* FunCodec's structured dropout (``random.choice(rand_num_quant)``): choices, always;
* DAC (Kumar et al. 2023, §3.2, ``dac/nn/quantize.py:166-171``): ``per_example``: B counts
  drawn uniformly whatever the probability, the first floor(B p) examples use theirs.

The choices are codebook counts on the quantizer's ladder
(:attr:`codectk.quantization.base.Quantizer.valid_n_quantizers`, multiples of its
``codebooks_per_step``): K' uniform over the ladder by default. A draw over n choices is
``choices[torch.randint(n)]``, the same number as ``torch.randint(1, n + 1)`` for the
ladder 1..n, so the streams of the authors' draws are kept.

Two modes (the quantizer's ``sync_free`` switch, :mod:`codectk.quantization.base`):

* exact (the default on the CPU): the draws above, from the global CPU generator (the
  authors' stream, what ``test/parity`` compares); under ``torch.distributed`` rank 0's
  per-batch K' is broadcast (a host round trip); per-example counts are copied to the
  device;
* sync-free (the default on CUDA): a per-batch K' comes from a host ``random.Random``
  that is the same on every rank (seeded by :meth:`QuantizerDropout.reseed` with the run's
  seed and step, or from 0), so no rank waits for another and nothing is read back from
  the device; per-example counts are drawn on the device. Same distributions, another
  random stream.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from codectk.errors import check_choice
from codectk.quantization.distributed import broadcast_, world_size

COINS = ("always", "uncertain")


def dropout_policy(
    quantizer_dropout: float, dropout: QuantizerDropout | None = None, **options
) -> QuantizerDropout | None:
    """The policy of a quantizer's ``quantizer_dropout`` (a probability, the flat config
    key) or ``dropout`` (a policy), at most one of them given.

    Args:
        quantizer_dropout (float): probability in [0, 1]; 0 with no ``options``: none.
        dropout (QuantizerDropout | None): a policy given instead.
        **options: further :class:`QuantizerDropout` arguments for ``quantizer_dropout``
            (e.g. ``per_example=True``, which makes a policy even at probability 0).

    Raises:
        ValueError: a probability outside [0, 1], or both given.
    """
    if not 0.0 <= quantizer_dropout <= 1.0:
        raise ValueError(f"quantizer_dropout {quantizer_dropout} must lie in [0, 1]")
    if dropout is not None:
        if quantizer_dropout > 0:
            raise ValueError("give quantizer_dropout or a dropout policy, not both")
        return dropout
    if quantizer_dropout > 0 or options:
        return QuantizerDropout(quantizer_dropout, **options)
    return None


class QuantizerDropout:
    """A quantizer-dropout policy (see module doc).

    Args:
        probability (float): per batch, the probability that K' is drawn (else all K);
            per example, the fraction of the batch (its first floor(B p) examples) whose
            counts are drawn.
        choices (list[int] | None): the K' values drawn from, uniformly (None: the whole
            ladder of the quantizer).
        per_example (bool): one count per example (DAC) instead of one per batch.
        coin (str): "always" tosses the probability coin on every per-batch draw,
            "uncertain" only when the probability is below 1 (EnCodec's draw).

    Raises:
        ValueError: a probability outside [0, 1], empty choices or an unknown ``coin``.
    """

    def __init__(
        self,
        probability: float = 0.0,
        choices: list[int] | None = None,
        per_example: bool = False,
        coin: str = "always",
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"quantizer dropout probability {probability} must lie in [0, 1]")
        check_choice("coin", coin, COINS)
        if choices is not None and not choices:
            raise ValueError("quantizer dropout choices must not be empty")
        self.probability = float(probability)
        self.choices = None if choices is None else [int(n) for n in choices]
        self.per_example = per_example
        self.coin = coin
        self._host = random.Random(0)
        self._device_choices: dict[tuple, Tensor] = {}

    def __repr__(self) -> str:
        return (
            f"QuantizerDropout(probability={self.probability}, choices={self.choices}, "
            f"per_example={self.per_example}, coin={self.coin!r})"
        )

    def check(self, ladder: list[int]) -> None:
        """Check the choices against a quantizer's ladder of codebook counts.

        Raises:
            ValueError: a choice that is not on the ladder, naming the valid counts.
        """
        bad = [n for n in self.choices or [] if n not in ladder]
        if bad:
            raise ValueError(
                f"quantizer dropout choices {self.choices} must be codebook counts the "
                f"quantizer offers; {bad} are not among {ladder}"
            )

    def reseed(self, seed: int, step: int, salt: str = "") -> None:
        """Restart the sync-free host generator from (``seed``, ``step``, ``salt``): the
        same numbers on every rank, and after a resume at ``step``."""
        self._host = random.Random(f"{seed}/{step}/{salt}")

    def sample(
        self,
        ladder: list[int],
        device: torch.device,
        sync_free: bool,
        generator: torch.Generator | None = None,
    ) -> int:
        """K' for one batch.

        Args:
            ladder (list[int]): the quantizer's valid codebook counts, ascending.
            device (torch.device): where a broadcast over ranks runs (exact mode).
            sync_free (bool): the host generator, no broadcast (module doc).
            generator (torch.Generator | None): exact mode's generator (None: global).

        Returns:
            int: K', one of the choices, or ``ladder[-1]`` (all codebooks).
        """
        p, choices = self.probability, self.choices or ladder
        if sync_free:
            take = p >= 1.0 or (p > 0.0 and self._host.random() < p)
            return choices[self._host.randrange(len(choices))] if take else ladder[-1]
        take = (self.coin == "uncertain" and p >= 1.0) or bool(
            torch.rand((), generator=generator) < p
        )
        n = ladder[-1]
        if take:
            n = choices[int(torch.randint(len(choices), (), generator=generator))]
        if world_size() > 1:  # rank 0's draw, so every rank runs the same codebooks
            n = int(broadcast_(torch.tensor(n, device=device)))
        return n

    def sample_per_example(
        self, batch: int, ladder: list[int], device: torch.device, sync_free: bool
    ) -> Tensor:
        """Counts K'_b for a batch of ``batch`` examples (DAC's draw, exact mode: B numbers
        from the global CPU generator whatever the probability; sync-free: on the device).

        Returns:
            Tensor: LongTensor (B,) on ``device``: the first floor(B p) examples' counts
            drawn from the choices, the others ``ladder[-1]``.
        """
        choices = self.choices or ladder
        n_drop = int(batch * self.probability)  # floor, as DAC's int()
        if sync_free:
            index = torch.randint(len(choices), (batch,), device=device)  # (B,)
            drawn = self._choices_on(choices, device)[index]
            keep = torch.arange(batch, device=device) < n_drop
            return torch.where(keep, drawn, ladder[-1])
        drawn = torch.tensor(choices)[torch.randint(len(choices), (batch,))]  # (B,), CPU
        counts = torch.full((batch,), ladder[-1], dtype=torch.long)
        counts[:n_drop] = drawn[:n_drop]
        return counts.to(device)

    def _choices_on(self, choices: list[int], device: torch.device) -> Tensor:
        """The choices as a LongTensor on ``device``, copied there once."""
        key = (device, tuple(choices))
        if key not in self._device_choices:
            self._device_choices[key] = torch.tensor(choices, device=device)
        return self._device_choices[key]
