"""A budget of casts and copies per training step under CPU bf16 autocast (issue 19,
item 4), counted with ``torch.profiler`` on the demo's tiny DAC (MPD + multi-band MRD,
discriminator from step 1, fused AdamW as on CUDA, batch 2 x 0.38 s), step 3.

Counted: ``aten::_to_copy`` of more than one element (dtype casts of tensors; the 0-dim
casts of Python scalars inside ops are left out) and ``aten::copy_`` of more than one
element not made by such a cast (clones, paddings, slice gradients...).

Measured on torch 2.13: before issue 19's changes (commit ab60db3, the same config and
count) 1790 casts and 437 copies per step; after them 1260 and 456. Weight norm and
autocast still cast every weight-normalised weight once per call (it is not a leaf), now
once per phase; the feature maps are no longer copied to float32; the snake's eager CPU
arithmetic casts to float32 (on CUDA it is one compiled kernel); CPU reductions
``mean(dtype=float32)`` of bf16 maps copy (on CUDA the cast is inside the kernel). The
copies grew by the slice gradients of the one-call discriminator (its halves).
"""

from __future__ import annotations

import math
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from codectk.config import build_train_config, load_yaml
from codectk.train.trainer import Trainer
from test.single_thread import one_torch_thread  # noqa: F401
from test.train.test_sync_free import TINY_DAC

CASTS, COPIES = 1260, 456  # measured (module doc)
MARGIN = 1.03


def _numel(event) -> int:
    shapes = event.input_shapes
    return math.prod(shapes[0]) if shapes and isinstance(shapes[0], list) else 0


def count_casts_and_copies(fn) -> tuple[int, int]:
    """(tensor casts, other tensor copies) that ``fn()`` runs (see module doc)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    events = prof.events()
    casts = [e for e in events if e.name == "aten::_to_copy" and _numel(e) > 1]
    copies = [
        e
        for e in events
        if e.name == "aten::copy_"
        and _numel(e) > 1
        and not (e.cpu_parent is not None and e.cpu_parent.name == "aten::_to_copy")
    ]
    return len(casts), len(copies)


def test_casts_and_copies_per_bf16_step_stay_within_budget(tmp_path: Path, dumped):
    conf = load_yaml(TINY_DAC)
    conf["optim_conf"] = {**conf["optim_conf"], "fused": True}
    conf["optim2_conf"] = {**conf["optim2_conf"], "fused": True}
    conf.update(amp="bf16", discriminator_start_step=0, batch_size=2, valid_max_duration=0.5)
    t = Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])
    for step in (1, 2):
        t.step = step
        t._train_step(t.train_set[step])
    t.step = 3
    casts, copies = count_casts_and_copies(lambda: t._train_step(t.train_set[3]))
    assert casts <= CASTS * MARGIN, f"{casts} casts per step (budget {CASTS})"
    assert copies <= COPIES * MARGIN, f"{copies} copies per step (budget {COPIES})"
