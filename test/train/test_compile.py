"""``compile: true`` compiles regions (issue 19, item 5): the generator's residual blocks,
each sub-discriminator and the mel loss. On a SoundStream of 8 k parameters (2 + 2 SEANet
blocks, one MelGAN scale and SoundStream's STFT discriminator) over 3 CPU steps: no graph
break, every graph compiled in step 1 and nothing recompiled after it, and losses,
gradients and weights equal the eager step's within the tolerances stated below (SGD, so
that the weights move linearly in the gradients).

Inductor compiles C++ on the CPU: about 150 s the first time on a busy 2-core machine,
about 10 s once inductor's cache holds the kernels. Marked ``compile``; skipped with
the compiler's error where none works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config
from codectk.train.trainer import Trainer
from test.single_thread import one_torch_thread  # noqa: F401
from test.train.old_checkpoint import small_conf

pytestmark = pytest.mark.compile

# measured on torch 2.13 (CPU), from TORCH_LOGS=recompiles: 2 encoder + 2 decoder SEANet
# blocks (four widths; weight norm also gives each conv its own class, which dynamo
# guards on), the MelGAN scale and the STFT discriminator twice each (the discriminator's
# turn feeds an input without gradient, the generator's turn one with), the mel loss
UNIQUE_GRAPHS = 9


def _conf(**overrides) -> dict:
    """The old-checkpoint fixture's SoundStream without k-means initialisation, dead-code
    replacement or quantizer dropout: k-means over a few frames turns a float32 rounding
    of the encoder's output into other codewords (measured: a 0.5% different mel loss at
    step 1), which would hide what this test compares."""
    conf = small_conf(
        discriminator_start_step=0,
        log_interval=1000,
        optim="sgd",
        optim2="sgd",
        optim_conf={"lr": 0.01},
        optim2_conf={"lr": 0.01},
    )
    conf["codec_conf"]["quantizer"].update(kmeans_init=False, threshold_ema_dead_code=0.0)
    conf["codec_conf"]["quantizer_dropout"] = 0.0
    conf.update(overrides)
    return conf


def _steps(t: Trainer, monkeypatch) -> tuple[list, list]:
    parts, grads = [], []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        grads.append([None if p.grad is None else p.grad.clone() for p in parameters])
        return real(parameters, max_norm, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch.nn.utils, "clip_grad_norm_", spy)
        for step in (1, 2, 3):
            t.step = step
            parts.append({k: float(v) for k, v in t._train_step(t.train_set[step]).items()})
    return parts, grads


def test_compiled_regions_train_as_the_eager_step(tmp_path: Path, dumped, monkeypatch):
    from torch._dynamo.utils import counters

    eager = Trainer(build_train_config(_conf()), tmp_path / "eager", *dumped.values())
    e_parts, e_grads = _steps(eager, monkeypatch)

    torch._dynamo.reset()
    counters.clear()
    t = Trainer(build_train_config(_conf(compile=True)), tmp_path / "compiled", *dumped.values())
    graphs = []
    real_step = t._train_step

    def counted(batch):
        out = real_step(batch)
        graphs.append(counters["stats"]["unique_graphs"])
        return out

    monkeypatch.setattr(t, "_train_step", counted)
    try:
        c_parts, c_grads = _steps(t, monkeypatch)
    except Exception as exc:  # no working C++ compiler: say which error
        if "compil" in str(exc).lower() or "InductorError" in type(exc).__name__:
            pytest.skip(f"torch.compile cannot run here: {str(exc).splitlines()[0][:300]}")
        raise

    assert dict(counters["graph_break"]) == {}
    # step 1 compiles every graph (UNIQUE_GRAPHS); steps 2 and 3 add nothing
    assert graphs == [UNIQUE_GRAPHS] * 3
    assert counters["frames"]["ok"] == UNIQUE_GRAPHS

    # Tolerances: this step is sensitive to rounding by itself. In the eager step, an input
    # scaled by (1 + 1e-7) moves the gradient reaching the encoder's output by 3% of its
    # largest entry (through the quantizer and the log-mel loss), so compiled kernels'
    # other float32 roundings move the small encoder gradients as much. Measured against
    # the eager step: loss parts 5e-5 relative, gradients 7e-4 (step 1) and 2.4e-3
    # (steps 2, 3) of the network's largest gradient entry, weights 1.7e-4 of each
    # tensor's largest entry after 3 steps.
    for step in range(3):
        for k, v in e_parts[step].items():
            assert c_parts[step][k] == pytest.approx(v, rel=2e-4, abs=1e-7), (step, k)
    for a_list, b_list in zip(c_grads, e_grads):
        net = max(float(b.abs().max()) for b in b_list if b is not None)
        for a, b in zip(a_list, b_list):
            if b is not None:
                assert float((a - b).abs().max()) <= 1e-2 * net
    for (k, a), b in zip(t.codec.state_dict().items(), eager.codec.state_dict().values()):
        if a.is_floating_point():
            assert float((a - b).abs().max()) <= 1e-3 * float(b.abs().max()) + 1e-7, k
