"""The GAN step orders (``gan_step_order``) and FunCodec's discriminator gate: a spy on
the order of the generator/discriminator forwards and optimizer steps, and on what the
discriminator sees as the fake."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import GAN_STEP_ORDERS, ConfigError, build_train_config
from codectk.errors import CodectkError
from codectk.models.soundstream import soundstream_tiny_conf
from codectk.train.trainer import Trainer
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401


def _conf(**overrides) -> dict:
    """Tiny SoundStream without rank-local randomness or quantizer dropout, one
    sub-discriminator, the discriminator from step 1, real and fake in separate calls
    (``discriminator_batch: none``: the spy sees each call)."""
    conf = make_soundstream_conf(
        codec_conf=soundstream_tiny_conf(
            encoder=dict(n_filters=4, dimension=16, n_residual_layers=1),
            quantizer=dict(kmeans_init=False, threshold_ema_dead_code=0.0),
            quantizer_dropout=0.0,
        ),
        discriminator_conf={
            "discriminators": {
                "msd": {"scales": 1, "channels": 4, "max_channels": 16, "downsample_scales": [4]}
            }
        },
        batch_size=2,
        discriminator_start_step=0,
        grad_clip=0.0,
        discriminator_batch="none",
    )
    conf.update(overrides)
    return conf


def _trainer(tmp_path: Path, dumped, name: str, **overrides) -> Trainer:
    t = Trainer(build_train_config(_conf(**overrides)), tmp_path / name, *dumped.values())
    t.step = 1
    return t


class Spy:
    """Records generator forwards (with their output and whether autograd was on),
    discriminator forwards (with their input) and optimizer steps, in call order."""

    def __init__(self, t: Trainer):
        self.events: list[tuple] = []
        t.codec.register_forward_hook(self._codec)
        t.disc.register_forward_hook(self._disc)
        for name, opt in (("G.step", t.opt), ("D.step", t.opt_d)):
            step = opt.step

            def spied(*a, _step=step, _name=name, **k):
                self.events.append((_name,))
                return _step(*a, **k)

            opt.step = spied

    def _codec(self, module, args, out):
        self.events.append(("G", torch.is_grad_enabled(), out.wav.detach().clone()))

    def _disc(self, module, args, out):
        self.events.append(("D", args[0].detach().clone()))

    def names(self) -> list[str]:
        return [e[0] for e in self.events]


def _step(t: Trainer) -> tuple[Spy, dict, torch.Tensor]:
    spy = Spy(t)
    batch = t.train_set[1]
    parts = t._train_step(batch)
    return spy, parts, batch.wav


def test_d_first_is_the_default_and_updates_d_before_g(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "d")
    assert t.config.gan_step_order == "d_first"
    spy, parts, wav = _step(t)
    assert spy.names() == ["G", "D", "D", "D.step", "D", "D", "G.step"]
    g_out = spy.events[0][2]
    # D turn: real then the detached output; G turn: that same output, then real
    torch.testing.assert_close(spy.events[1][1], wav, rtol=0, atol=0)
    torch.testing.assert_close(spy.events[2][1], g_out, rtol=0, atol=0)
    torch.testing.assert_close(spy.events[4][1], g_out, rtol=0, atol=0)
    assert "d_total" in parts and "g_adv" in parts


@pytest.mark.parametrize("order", ["d_first", "g_first"])
def test_one_batch_real_then_fake_in_each_turn(tmp_path: Path, dumped, order: str):
    """discriminator_batch: both (the default): one call per turn on cat([real, fake])."""
    t = _trainer(tmp_path, dumped, order, gan_step_order=order, discriminator_batch="both")
    assert t.batch_d and t.batch_g
    spy, parts, wav = _step(t)
    if order == "d_first":
        assert spy.names() == ["G", "D", "D.step", "D", "G.step"]
    else:
        assert spy.names() == ["G", "D", "G.step", "D", "D.step"]
    g_out = spy.events[0][2]
    for i in (1, 3):  # both turns: real first, then that step's generator output
        seen = spy.events[i][1]
        assert seen.shape[0] == 2 * wav.shape[0]
        torch.testing.assert_close(seen[: wav.shape[0]], wav, rtol=0, atol=0)
        torch.testing.assert_close(seen[wav.shape[0] :], g_out.float(), rtol=0, atol=0)
    assert {"d_total", "g_adv", "g_feat"} <= set(parts)


def test_d_turn_batching_leaves_the_generator_turn_two_calls(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "dt", discriminator_batch="d_turn")
    assert t.batch_d and not t.batch_g
    spy, _, _ = _step(t)
    assert spy.names() == ["G", "D", "D.step", "D", "D", "G.step"]


def test_g_first_trains_d_on_the_output_before_the_update(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "g", gan_step_order="g_first")
    spy, parts, wav = _step(t)
    assert spy.names() == ["G", "D", "D", "G.step", "D", "D", "D.step"]
    g_out = spy.events[0][2]
    assert spy.events[0][1]  # one generator forward, with autograd
    torch.testing.assert_close(spy.events[1][1], g_out, rtol=0, atol=0)  # fake for L_adv
    torch.testing.assert_close(spy.events[4][1], wav, rtol=0, atol=0)
    torch.testing.assert_close(spy.events[5][1], g_out, rtol=0, atol=0)  # pre-update output
    with torch.no_grad():  # ... which the updated generator no longer gives
        assert not torch.equal(t.codec(wav).wav, g_out)
    assert {"d_total", "d_real", "d_fake", "g_adv", "g_feat", "g_mel"} <= set(parts)


def test_g_first_regenerate_trains_d_on_a_recomputed_output(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "gr", gan_step_order="g_first_regenerate")
    spy, _, wav = _step(t)
    assert spy.names() == ["G", "D", "D", "G.step", "G", "D", "D", "D.step"]
    first, again = spy.events[0], spy.events[4]
    assert first[1] and not again[1]  # the recomputation runs without autograd
    assert not torch.equal(first[2], again[2])  # ... by the updated generator
    torch.testing.assert_close(spy.events[5][1], wav, rtol=0, atol=0)
    torch.testing.assert_close(spy.events[6][1], again[2], rtol=0, atol=0)


def test_d_first_regenerate_reruns_the_generator_for_d(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "dr", gan_step_order="d_first_regenerate")
    before = [b.clone() for b in t.codec.quantizer.buffers()]
    spy, _, wav = _step(t)
    assert spy.names() == ["G", "D", "D", "D.step", "G", "D", "D", "G.step"]
    d_gen, g_gen = spy.events[0], spy.events[4]
    assert not d_gen[1] and g_gen[1]
    torch.testing.assert_close(spy.events[2][1], d_gen[2], rtol=0, atol=0)
    torch.testing.assert_close(spy.events[5][1], g_gen[2], rtol=0, atol=0)
    # two training forwards: the EMA codebooks moved twice (FunCodec's behaviour)
    assert not torch.equal(d_gen[2], g_gen[2])
    assert any(not torch.equal(a, b) for a, b in zip(before, t.codec.quantizer.buffers()))


def test_steps_without_a_discriminator_turn_update_only_g(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "p", gan_step_order="g_first", discriminator_update_prob=0.3)
    seen = set()
    for step in range(1, 8):
        t.step = step
        turn = t._discriminator_turn()
        spy, parts, _ = _step(t)
        assert ("d_total" in parts) == turn
        seen.add(turn)
        expected = ["G", "D", "D", "G.step"] + (["D", "D", "D.step"] if turn else [])
        assert spy.names() == expected
    assert seen == {True, False}


def _snapshot(t: Trainer) -> dict[str, torch.Tensor]:
    """Parameters of both networks (the EMA codebook buffers move once per forward)."""
    out = {f"codec.{k}": v.detach().clone() for k, v in t.codec.named_parameters()}
    out.update({f"disc.{k}": v.detach().clone() for k, v in t.disc.named_parameters()})
    return out


@pytest.mark.parametrize("order", ["g_first", "g_first_regenerate", "d_first_regenerate"])
def test_gradient_accumulation_matches_one_batch(tmp_path: Path, dumped, order: str):
    # EMA codebooks update once per forward, i.e. per micro-batch: hold them still here.
    # SGD: an update linear in the gradient (Adam's first steps are about lr * sign(g),
    # which float rounding flips for gradients near zero)
    conf = _conf(gan_step_order=order, optim="sgd", optim_conf={"lr": 0.01}, optim2="sgd")
    conf["optim2_conf"] = {"lr": 0.01}
    conf["codec_conf"]["ema_decay"] = 1.0 - 1e-7
    init, states = None, []
    for accum in (1, 2):
        t = Trainer(
            build_train_config({**conf, "accum_grad": accum}),
            tmp_path / f"{order}{accum}",
            *dumped.values(),
        )
        init = _snapshot(t)
        for step in (1, 2):
            t.step = step
            t._train_step(t.train_set[step])
        states.append(_snapshot(t))
    one, two = states
    assert one.keys() == two.keys()
    moved = 0
    for k, v in one.items():
        # float32 mel losses of a batch and of its halves differ by up to ~5e-4 of the
        # largest gradient entry (log of small mel values): 1% of each tensor's update
        update = v - init[k]
        tol = 1e-2 * float(update.abs().max()) + 1e-9
        torch.testing.assert_close(
            two[k] - init[k], update, rtol=0, atol=tol, msg=lambda m, k=k: f"{k}: {m}"
        )
        moved += bool(update.abs().max() > 0)
    assert moved > 20


def test_discriminator_gate_compares_with_the_last_generator_turns(tmp_path: Path, dumped):
    t = _trainer(
        tmp_path,
        dumped,
        "gate",
        gan_step_order="d_first_regenerate",
        discriminator_loss_gate="generator_loss",
    )
    w = t.loss.weights
    _, parts, _ = _step(t)
    assert float(parts["d_gate"]) == 1.0  # nothing before step 1: gate value 0
    expected = float(parts["g_total"] - w["commit"] * parts["g_commit"])
    assert float(t.gate_g_loss) == pytest.approx(expected, rel=1e-5)
    t.gate_g_loss = torch.tensor(1e6)  # a generator loss no discriminator loss exceeds
    d_before = [p.detach().clone() for p in t.disc.parameters()]
    t.step = 2
    _, parts, _ = _step(t)
    assert float(parts["d_gate"]) == 0.0 and float(parts["d_total"]) > 0
    assert all(not p.grad.any() for p in t.disc.parameters())  # gated: zero gradients
    # ... but the optimizer stepped: Adam's momentum from step 1 still moves D
    assert any(not torch.equal(a, p) for a, p in zip(d_before, t.disc.parameters()))
    # the gate value restarted with this step's generator turn
    expected = float(parts["g_total"] - w["commit"] * parts["g_commit"])
    assert float(t.gate_g_loss) == pytest.approx(expected, rel=1e-5)


def test_bad_values_are_config_errors(tmp_path: Path, dumped):
    with pytest.raises(ConfigError, match=r"gan_step_order 'x' not supported; choose one of"):
        build_train_config(_conf(gan_step_order="x"))
    with pytest.raises(ConfigError, match=r"discriminator_loss_gate 'y' not supported"):
        build_train_config(_conf(discriminator_loss_gate="y"))
    with pytest.raises(CodectkError, match="needs a loss with named term weights"):
        _trainer(
            tmp_path,
            dumped,
            "bad",
            discriminator=None,
            loss="model_only",
            loss_conf={},
            discriminator_loss_gate="generator_loss",
        )


@pytest.mark.parametrize("order", GAN_STEP_ORDERS)
def test_fp16_steps_with_every_order(tmp_path: Path, dumped, order: str):
    t = _trainer(tmp_path, dumped, order, gan_step_order=order, amp="fp16")
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    g0 = [p.detach().clone() for p in t.codec.parameters()]
    scales = []
    for step in range(1, 10):  # the scaler halves from 65536 to 512, skipping 7 steps
        t.step = step
        parts = t._train_step(t.train_set[step])
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in parts.values()), parts
        assert {"g_total", "d_total"} <= set(parts)
        scales.append(t.scaler.get_scale())
    assert scales[0] < 65536.0 and scales == sorted(scales, reverse=True)
    assert any(not torch.equal(a, p) for a, p in zip(d0, t.disc.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(g0, t.codec.parameters()))


def test_two_ranks_with_accumulation_stay_identical(tmp_path: Path, dumped):
    """DDP (gloo, 2 CPU processes) x accum_grad 2 with an order whose turns each run
    no_sync over their micro-batches: the ranks hold identical weights afterwards."""
    import torch.multiprocessing as mp

    from test.train.test_ddp import _deterministic_conf, _worker

    conf = _deterministic_conf(gan_step_order="g_first_regenerate", accum_grad=2, max_steps=3)
    args = (str(tmp_path / "rdv"), str(tmp_path), str(dumped["train"]), str(dumped["valid"]))
    mp.spawn(_worker, args=(2, *args, conf), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("codec", "disc"):
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"{part}.{k} differs between ranks"
    assert any(r.get("d_total") is not None for r in r0["history"] if r["phase"] == "train")


def test_optim_reset_step_starts_the_generator_optimizer_afresh(tmp_path: Path, dumped):
    t = _trainer(tmp_path, dumped, "reset", optim_reset_step=3)
    for step in (1, 2, 3):
        t.step = step
        t._train_step(t.train_set[step])
        counts = {int(s["step"]) for s in t.opt.state.values()}
        assert counts == ({step} if step < 3 else {1}), (step, counts)
        assert {int(s["step"]) for s in t.opt_d.state.values()} == {step}  # D untouched
    with pytest.raises(ConfigError, match="optim_reset_step=-1 must be >= 0"):
        build_train_config(_conf(optim_reset_step=-1))
