"""GAN codec trainer: generator/discriminator alternation, validation, n-best
checkpoints with averaging, resume, TensorBoard and curve PNGs.

Experiment folder written (DESIGN.md)::

    config.yaml                       resolved config (all that decoding reads)
    checkpoint.pt                     resume state (models, optimizers, schedulers, RNG)
    <step>steps.pt                    snapshots in the current n-best
    valid.<criterion>.best.pt         best snapshot
    valid.<criterion>.ave_<N>best.pt  average of the N best (valid.<criterion>.ave.pt
                                      links to it); the default inference model
    history.json  tensorboard/  images/
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from codectk.config import TrainConfig, save_config
from codectk.data.dataset import RandomCropDataset, UtteranceDataset, identity_collate
from codectk.discriminators import DISCRIMINATORS
from codectk.errors import CodectkError
from codectk.io.fileio import atomic_write
from codectk.io.modelfile import (
    FORMAT_VERSION,
    MODEL_FORMAT,
    STATE_FORMAT,
    load_file,
    model_file,
    read_model_file,
    save_atomic,
)
from codectk.losses import LOSSES
from codectk.metrics.distance import log_mel_distance
from codectk.models import CODECS
from codectk.quantization.base import seed_dropout_
from codectk.train.checkpoint import average_state_dicts
from codectk.train.distributed import DistInfo, all_true, any_true, barrier
from codectk.train.draws import as_float32, torch_cpu_uniform
from codectk.train.optim import build_optimizer, build_scheduler
from codectk.train.plot import plot_history
from codectk.train.regions import (
    cached_weights,
    compile_regions,
    discriminator_regions,
    generator_regions,
    loss_regions,
    per_call_state,
    split_batch,
)
from codectk.train.steplog import StepLog, StepRecord

log = logging.getLogger(__name__)


class TrainingOutOfMemoryError(CodectkError, RuntimeError):
    """Out of memory in a training step; names the batch and the options to lower."""


class NonFiniteLossError(CodectkError, RuntimeError):
    """A NaN/inf loss or gradient; names the step, the batch's utterances and the last
    good checkpoint."""


class TrainingTimeBudgetReached(CodectkError, RuntimeError):
    """``max_train_time`` was used up: the state is checkpointed; re-run to continue."""


def _add_parts(parts: dict, new: dict, n: int, prefix: str = "") -> None:
    """``parts[prefix + k] += new[k] / n`` without reading any tensor (tensors stay on
    their device; numbers stay Python numbers)."""
    for k, v in new.items():
        v = v.detach() if isinstance(v, torch.Tensor) else float(v)
        v = v if n == 1 else v / n
        key = prefix + k
        parts[key] = v if key not in parts else parts[key] + v


class Trainer:
    """Train one codec experiment.

    Args:
        config (TrainConfig): the validated training config.
        output_dir: the experiment folder ``exp/codec_<tag>``.
        train_dir, valid_dir: dumped data dirs (wav.scp + utt2num_samples).
        device (str): ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``.
        resume (bool): continue from ``output_dir/checkpoint.pt`` when present.
        dist_info (DistInfo | None): this process's rank under DDP (torchrun); the process
            group must be initialised (:func:`codectk.train.distributed.init_from_env`).
            Generator and discriminator are wrapped in DistributedDataParallel; every rank
            reads its share of each global batch, validates its share of the validation
            set, and resumes from the same checkpoint; rank 0 alone writes files.

    Raises:
        ValueError: a global batch that does not split over ranks and micro-batches, or
            fewer validation utterances than ranks.
    """

    def __init__(
        self,
        config: TrainConfig,
        output_dir,
        train_dir,
        valid_dir,
        device: str = "cpu",
        resume: bool = True,
        dist_info: DistInfo | None = None,
    ):
        self.config, self.device = config, torch.device(device)
        self.dist = dist_info or DistInfo()
        self.out = Path(output_dir)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        barrier(self.dist)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        c = config
        if c.batch_size % (self.dist.world_size * c.accum_grad):
            raise ValueError(
                f"batch_size {c.batch_size} does not split into {self.dist.world_size} ranks x "
                f"{c.accum_grad} micro-batches (accum_grad)"
            )
        self.codec = CODECS.build(c.codec, c.codec_conf).to(self.device)
        self.disc = (
            DISCRIMINATORS.build(c.discriminator, c.discriminator_conf).to(self.device)
            if c.discriminator
            else None
        )
        if self.disc is not None and c.discriminator_memory_format == "channels_last":
            self.disc.to(memory_format=torch.channels_last)  # 4-D weights only
        self.loss = LOSSES.build(c.loss, {"sample_rate": self.codec.sample_rate, **c.loss_conf}).to(
            self.device
        )
        self.opt = build_optimizer(c.optim, c.optim_conf, self.codec.parameters())
        self.sched = build_scheduler(c.scheduler, c.scheduler_conf, self.opt)
        self.opt_d = (
            build_optimizer(c.optim2, c.optim2_conf, self.disc.parameters()) if self.disc else None
        )
        self.sched_d = (
            build_scheduler(c.scheduler2, c.scheduler2_conf, self.opt_d) if self.disc else None
        )
        sr = self.codec.sample_rate
        self.train_set = RandomCropDataset(
            train_dir,
            sr,
            round(c.segment_duration * sr),
            c.batch_size,
            c.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.valid_set = UtteranceDataset(
            valid_dir, sr, max_samples=round(c.valid_max_duration * sr)
        )
        if len(self.valid_set) < self.dist.world_size:
            raise ValueError(
                f"{valid_dir}: {len(self.valid_set)} validation utterances for "
                f"{self.dist.world_size} ranks; every rank needs at least one"
            )
        self.max_steps = c.max_steps
        if c.max_epochs is not None:
            per_epoch = self.train_set.lengths.sum() / (
                c.batch_size * self.train_set.segment_length
            )
            self.max_steps = min(self.max_steps, max(1, math.ceil(c.max_epochs * per_epoch)))
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[c.amp]
        self.scaler = torch.amp.GradScaler(self.device.type) if c.amp == "fp16" else None
        # A non-finite step is skipped on the device where every optimizer reads the
        # found_inf flag (fused Adam/AdamW/SGD: the GradScaler protocol); elsewhere (the
        # CPU default, fp16's scaler) the host checks each loss and norm as it is made.
        self.device_skip = self.scaler is None and all(
            getattr(o, "_step_supports_amp_scaling", False)
            for o in (self.opt, self.opt_d)
            if o is not None
        )
        self.steplog = StepLog()  # step reports, read at logging and validation steps
        self._checks: list[tuple[str, torch.Tensor]] = []  # this step's checked values
        self._skips: list[tuple[str, torch.Tensor]] = []  # this step's found_inf flags
        self._bad: torch.Tensor | None = None  # this step's device-side non-finite flag
        # real and fake through the discriminator in one call (D turn; G turn with "both")
        self.disc_state = per_call_state(self.disc) if self.disc is not None else None
        self.batch_d = self.disc is not None and c.discriminator_batch != "none"
        if self.batch_d and self.disc_state:
            log.info(
                "discriminator_batch %s: real and fake take separate calls (%s)",
                c.discriminator_batch,
                self.disc_state,
            )
            self.batch_d = False
        self.batch_g = self.batch_d and c.discriminator_batch == "both"
        self.step = 0
        self.nbest: list[tuple[float, int]] = []  # (criterion value, step), best first
        self.history: list[dict] = []
        self.crit = f"valid.{c.best_model_criterion}"
        self.checkpoint_step = -1  # step of the last checkpoint.pt written or loaded
        self.n_skipped = 0  # batches skipped for a non-finite loss (nonfinite_policy: skip)
        self.resumed_rng = False  # RNG state restored from checkpoint.pt
        # discriminator_loss_gate: generator objective summed since the last D turn
        self.gate_g_loss = torch.zeros((), device=self.device)
        if c.discriminator_loss_gate != "none" and not isinstance(
            getattr(self.loss, "weights", None), dict
        ):
            raise CodectkError(
                f"discriminator_loss_gate {c.discriminator_loss_gate!r} needs a loss with "
                f"named term weights (codec_gan, dac, esc); loss {c.loss!r} has none"
            )
        self._check_freeze_modules()
        if resume and (self.out / "checkpoint.pt").exists():
            self._load_state(self.out / "checkpoint.pt")
        elif c.init_from:
            self._init_from(c.init_from)
        if self.dist.is_main:
            save_config(c, self.out / "config.yaml")
        if not self.resumed_rng:  # per-rank stream from the one seed (and the step, on resume)
            torch.manual_seed(c.seed + 1000 * self.dist.rank + 7919 * self.step)
        if c.compile:
            self._compile_regions()
        self.codec_fwd, self.disc_fwd = self.codec, self.disc
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # quantizer dropout and frozen modules leave some parameters unused in a step
            self.codec_fwd = DDP(
                self.codec, device_ids=ids, find_unused_parameters=True, forward_sync_buffers=False
            )
            if self.disc is not None:
                self.disc_fwd = DDP(self.disc, device_ids=ids, forward_sync_buffers=False)
        self.writer = None

    def _compile_regions(self) -> None:
        """``compile: true``: the generator's blocks, each sub-discriminator and the
        spectral losses, each compiled in place (:mod:`codectk.train.regions`)."""
        regions = generator_regions(self.codec)
        if self.disc is not None:
            channels = getattr(self.codec, "channels", 1)
            example = torch.zeros(1, channels, self.train_set.segment_length, device=self.device)
            regions += [
                (f"discriminator.{n}", m) for n, m in discriminator_regions(self.disc, example)
            ]
        regions += [(f"loss.{n}", m) for n, m in loss_regions(self.loss)]
        compile_regions(regions)

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "step": self.step,
            "codec": self.codec.state_dict(),
            "discriminator": self.disc.state_dict() if self.disc else None,
            "optim": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched else None,
            "optim2": self.opt_d.state_dict() if self.opt_d else None,
            "scheduler2": self.sched_d.state_dict() if self.sched_d else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "world_size": self.dist.world_size,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "loss": self.loss.state_dict(),  # e.g. EnCodec's balancer EMA
            "nbest": [[v, s] for v, s in self.nbest],
            "history": self.history,
            "n_skipped": self.n_skipped,
            "gate_g_loss": float(self.gate_g_loss),
        }

    def _load_state(self, path: Path) -> None:
        st = load_file(path, STATE_FORMAT, map_location=str(self.device))
        self.codec.load_state_dict(st["codec"])
        if self.disc is not None and st["discriminator"] is not None:
            self.disc.load_state_dict(st["discriminator"])
            self.opt_d.load_state_dict(st["optim2"])
            if self.sched_d is not None and st["scheduler2"] is not None:
                self.sched_d.load_state_dict(st["scheduler2"])
        self.opt.load_state_dict(st["optim"])
        if self.sched is not None and st["scheduler"] is not None:
            self.sched.load_state_dict(st["scheduler"])
        if self.dist.world_size == 1 and st.get("world_size", 1) == 1:
            torch.set_rng_state(st["rng_cpu"])
            if st["rng_cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(st["rng_cuda"])
        if st.get("loss"):
            self.loss.load_state_dict(st["loss"])
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.step = self.checkpoint_step = int(st["step"])
        self.n_skipped = int(st.get("n_skipped", 0))
        self.gate_g_loss = torch.tensor(float(st.get("gate_g_loss", 0.0)), device=self.device)
        self.nbest = [(float(v), int(s)) for v, s in st["nbest"]]
        self.history = st["history"]
        self.resumed_rng = self.dist.world_size == 1 and st.get("world_size", 1) == 1
        log.info("resumed from %s at step %d", path, self.step)

    def _init_from(self, source: str) -> None:
        """Copy weights of a finished experiment (``init_from``) into the codec."""
        c = self.config
        obj, where = read_model_file(source)
        theirs = {}
        for name, value in obj["model"].items():
            for old, new in c.init_map.items():
                if name == old or name.startswith(old + "."):
                    name = new + name[len(old) :]
                    break
            theirs[name] = value
        ours = self.codec.state_dict()
        prefixes = list(c.init_modules)
        for prefix in prefixes:
            if not any(k == prefix or k.startswith(prefix + ".") for k in ours):
                raise CodectkError(f"init_modules: {prefix!r} names no parameter of {c.codec}")
        copied = {}
        for name, value in theirs.items():
            if prefixes and not any(name == p or name.startswith(p + ".") for p in prefixes):
                continue
            if name not in ours:
                continue
            if ours[name].shape != value.shape:
                raise CodectkError(
                    f"init_from {where}: {name} has shape {tuple(value.shape)}, "
                    f"this codec's has {tuple(ours[name].shape)}"
                )
            copied[name] = value
        for prefix in prefixes:
            if not any(k == prefix or k.startswith(prefix + ".") for k in copied):
                raise CodectkError(f"init_from {where}: nothing there for {prefix!r}")
        if not copied:
            raise CodectkError(f"init_from {where}: no parameter name and shape matches {c.codec}")
        self.codec.load_state_dict(copied, strict=False)
        log.info("initialised %d of %d tensors from %s", len(copied), len(ours), where)

    def _check_freeze_modules(self) -> None:
        for name in self.config.freeze_modules:
            try:
                self.codec.get_submodule(name)
            except AttributeError:
                raise CodectkError(
                    f"freeze_modules: {name!r} is not a submodule of {self.config.codec}"
                ) from None

    def _apply_freeze(self) -> None:
        """Hold ``freeze_modules`` fixed once ``freeze_from_step`` is reached."""
        c = self.config
        if self.step < c.freeze_from_step:
            return
        for name in c.freeze_modules:
            module = self.codec.get_submodule(name)
            module.eval()
            module.requires_grad_(False)

    def _snapshot_path(self, step: int) -> Path:
        return self.out / f"{step}steps.pt"

    # ------------------------------------------------------------- training
    def _last_checkpoint_text(self) -> str:
        last = self.out / "checkpoint.pt"
        return f"{last} (step {self.checkpoint_step})" if last.exists() else "none yet"

    def _rank_text(self) -> str:
        if not self.dist.distributed:
            return ""
        return f" (rank {self.dist.rank} of {self.dist.world_size})"

    def _check_finite(self, value: torch.Tensor, what: str, utts: list[str]) -> None:
        """Check that ``value`` is finite.

        With :attr:`device_skip` the value joins this step's device-side flag (read by the
        optimizers' ``found_inf``, reported at the next logging step); otherwise raise
        :class:`NonFiniteLossError` on every rank when it is NaN/inf on any.
        """
        if self.device_skip:
            v = value.detach()
            self._checks.append((what, v))
            bad = torch.isfinite(v).all().logical_not()
            self._bad = bad if self._bad is None else self._bad.logical_or(bad)
            return
        if all_true(bool(torch.isfinite(value).all()), self.dist, self.device):
            return
        raise NonFiniteLossError(
            f"non-finite {what} ({float(value.detach())}) at step {self.step} on utterances "
            f"{utts}{self._rank_text()}; last good checkpoint: {self._last_checkpoint_text()}. "
            f"Lower the learning rate or grad_clip, check these utterances, and re-run to resume."
        )

    def _found_inf(self) -> torch.Tensor:
        """This step's non-finite flag so far as the float32 ``found_inf`` of a fused
        optimizer (1.0: skip the update), or-reduced over ranks on the device."""
        if self._bad is None:
            found = torch.zeros((), device=self.device)
        else:
            found = self._bad.float()
        if self.dist.distributed:
            import torch.distributed as torch_dist

            torch_dist.all_reduce(found, op=torch_dist.ReduceOp.MAX)
            self._bad = found > 0  # later checks of this step include the other ranks'
        return found

    def _report_skipped(self, rec: StepRecord) -> None:
        """A step whose update(s) a fused optimizer skipped on the device: raise
        :class:`NonFiniteLossError` (``nonfinite_policy: stop``) or warn and count it."""
        bad = rec.nonfinite
        what = (
            ", ".join(f"non-finite {w} ({v})" for w, v in bad)
            if bad
            else "a non-finite loss or gradient on another rank"
        )
        updates = " and ".join(f"the {name}'s" for name in rec.skipped) or "no"
        msg = (
            f"{what} at step {rec.step} on utterances {rec.utts}{self._rank_text()}: "
            f"{updates} update of that step was skipped on the device; last good "
            f"checkpoint: {self._last_checkpoint_text()}. Lower the learning rate or "
            f"grad_clip, check these utterances, and re-run to resume."
        )
        if self.config.nonfinite_policy == "stop":
            raise NonFiniteLossError(msg)
        self.n_skipped += 1
        log.warning("skipped batch %d (%d skipped so far): %s", rec.step, self.n_skipped, msg)

    def _read_steps(self, acc: dict[str, float], counts: dict[str, int]) -> int:
        """Read the pending step reports (one device-to-host copy); report the skipped
        steps and add the others' parts to ``acc`` / ``counts``. Returns their number."""
        good = 0
        for rec in self.steplog.read():
            if rec.skipped or rec.nonfinite:
                self._report_skipped(rec)
                continue
            for k, v in rec.parts.items():
                acc[k] = acc.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            good += 1
        return good

    def _discriminator_turn(self) -> bool:
        """Whether this step updates the discriminator (``discriminator_update_prob``).

        The draw is ``torch.rand(())`` of a CPU generator seeded with ``seed * 1000003 +
        step`` (what earlier versions drew), computed in Python: no tensor, no device.
        """
        p = self.config.discriminator_update_prob
        if p >= 1.0:
            return True
        return torch_cpu_uniform(self.config.seed * 1_000_003 + self.step) < as_float32(p)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _discriminate(self, module, real, fake, batched: bool, fake_first: bool = False):
        """The discriminator's outputs on ``real`` and ``fake`` (B, 1, T): (real, fake).

        ``batched``: one call on ``cat([real, fake])``, split (the real half detached
        when ``fake_first``, the generator's turn, so that only the fake half carries
        gradients). Otherwise two calls under one weight-norm cache: real then fake, or
        with ``fake_first`` fake then real without gradients (the generator's turn).
        """
        if batched:
            with self._autocast():
                outs = module(torch.cat([real, fake]))
            real_outs, fake_outs = split_batch(outs, real.shape[0])
            if fake_first:
                real_outs = [[t.detach() for t in sub] for sub in real_outs]
            return real_outs, fake_outs
        cache = contextlib.nullcontext() if self.config.compile else cached_weights(self.disc)
        with cache, self._autocast():
            if not fake_first:
                return module(real), module(fake)
            fake_outs = module(fake)
            with torch.no_grad():
                return module(real), fake_outs

    def _backward(self, loss: torch.Tensor, inputs: list | None = None) -> None:
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward(inputs=inputs)

    def _optimizer_step(self, opt, sched, module, name: str, utts: list[str]) -> None:
        """Unscale (fp16), clip and check the gradient of ``module`` ("generator" or
        "discriminator"), then step ``opt`` (on the device, skipped by ``found_inf`` after a
        non-finite value, with :attr:`device_skip`) and ``sched``."""
        if self.scaler is not None:
            self.scaler.unscale_(opt)
        self._clip(module, f"{name} gradient", utts)
        if self.scaler is not None:
            self.scaler.step(opt)  # skipped when fp16 gradients overflowed
        elif self.device_skip:
            found = self._found_inf()
            opt.found_inf = found  # read by the fused step, as under a GradScaler
            try:
                opt.step()
            finally:
                del opt.found_inf
            self._skips.append((name, found))
        else:
            opt.step()
        if sched is not None:
            sched.step()

    def _train_step(self, batch) -> dict[str, torch.Tensor | float]:
        """One optimizer step of discriminator (from ``discriminator_start_step``) and
        generator over the batch, in ``accum_grad`` micro-batches, in the order
        ``gan_step_order`` (see :class:`~codectk.config.TrainConfig`).

        ``d_first`` with one micro-batch updates the discriminator first and the
        generator's adversarial and feature-matching losses use the updated discriminator
        (HiFi-GAN, DAC). With several, both accumulate gradients over the micro-batches and
        step at the end, so the generator's adversarial loss sees this step's discriminator
        before its update (as ESPnet's GAN trainer with accum_grad). The other orders run
        one turn over all micro-batches, step, then the other turn: the same update as one
        batch (up to float rounding and per-forward EMA codebook updates).

        Nothing here reads a tensor on the host when :attr:`device_skip` holds: the parts
        come back as detached 0-dim tensors (numbers where the model gives numbers) and
        the values checked for finiteness are in ``self._checks`` (see :meth:`run`).

        Returns:
            dict[str, Tensor | float]: ``g_*`` and ``d_*`` loss parts, ``n_quantizers``.
        """
        c = self.config
        self._checks, self._skips, self._bad = [], [], None
        if self.step == c.optim_reset_step:
            self.opt.state.clear()  # a new optimizer: fresh moments and step counts
        self.codec.on_train_step(self.step)
        # sync-free quantizer dropout: the same per-batch draws on every rank, and after a
        # resume, without a broadcast (the exact form on the CPU ignores it)
        seed_dropout_(self.codec, c.seed, self.step)
        self.codec.train()
        self._apply_freeze()
        adversarial = self.disc is not None and self.step >= c.discriminator_start_step
        update_d = adversarial and self._discriminator_turn()
        if adversarial:
            self.disc.train()
        micro = batch.wav.to(self.device, non_blocking=True).chunk(c.accum_grad)
        # noisy/clean pairs (Batch.target): the losses compare with the clean target
        targets = (
            micro
            if batch.target is None
            else batch.target.to(self.device, non_blocking=True).chunk(c.accum_grad)
        )
        gen_params = [p for p in self.codec.parameters() if p.requires_grad]
        self.opt.zero_grad(set_to_none=True)
        if update_d:
            self.opt_d.zero_grad(set_to_none=True)
        order = c.gan_step_order if update_d else "generator_only"
        if order in ("d_first", "generator_only"):
            parts = self._step_d_first(micro, targets, adversarial, update_d, gen_params, batch)
        elif order == "d_first_regenerate":
            parts = self._d_turn(micro, targets, None, batch.utts)
            parts.update(self._g_turn(micro, targets, adversarial, gen_params, batch.utts)[0])
        else:  # g_first, g_first_regenerate
            parts, fakes = self._g_turn(micro, targets, adversarial, gen_params, batch.utts)
            fakes = fakes if order == "g_first" else None
            parts.update(self._d_turn(micro, targets, fakes, batch.utts))
        if self.scaler is not None:
            self.scaler.update()
        return parts

    def _no_sync(self, k: int, n: int, *modules) -> contextlib.ExitStack:
        """DDP's ``no_sync`` of ``modules`` for every micro-batch but the last (one
        all-reduce per step); a no-op without DDP."""
        stack = contextlib.ExitStack()
        if self.dist.distributed and k < n - 1:
            for module in modules:
                stack.enter_context(module.no_sync())
        return stack

    def _d_loss(self, target: torch.Tensor, fake: torch.Tensor, gate_g: torch.Tensor, utts):
        """Discriminator loss on real ``target`` and detached ``fake`` (B, 1, T), times
        [L_D > ``gate_g``] with ``discriminator_loss_gate: generator_loss``; returns
        (loss, detached parts). The feature maps reach the loss in the compute dtype
        (the losses reduce them in float32)."""
        real_d, fake_d = self._discriminate(self.disc_fwd, target, fake, self.batch_d)
        d_loss, d_parts = self.loss.discriminator(real_d, fake_d)
        self._check_finite(d_loss, "discriminator loss", utts)
        if self.config.discriminator_loss_gate == "generator_loss":
            gate = (d_loss.detach() > gate_g).float()
            d_loss = d_loss * gate
            d_parts = {**d_parts, "gate": gate}
        return d_loss, d_parts

    def _g_loss(self, target: torch.Tensor, out, adversarial: bool, n: int, utts: list[str]):
        """Generator objective of one forward ``out`` (its wav against ``target``) plus the
        model's own losses; returns (loss, detached parts). With
        ``discriminator_loss_gate: generator_loss`` it adds 1 / ``n`` (micro-batches) of its
        value without the quantizer terms to :attr:`gate_g_loss`."""
        fake_outs = real_outs = None
        if adversarial:  # no DDP: only the generator learns here
            real_outs, fake_outs = self._discriminate(
                self.disc, target, out.wav, self.batch_g, fake_first=True
            )
        g_loss, g_parts = self.loss.generator(
            target,
            out.wav.float(),
            fake_outs,
            real_outs,
            out.commitment_loss.float(),
            out.codebook_loss.float(),
        )
        if self.config.discriminator_loss_gate == "generator_loss":
            w = self.loss.weights
            quantizer = sum(w[k] * g_parts[k] for k in ("commit", "codebook") if k in g_parts)
            self.gate_g_loss = self.gate_g_loss + (g_parts["total"] - quantizer) / n
        for name, term in out.losses.items():
            g_loss = g_loss + term.float()
            g_parts[name] = term.detach()
        self._check_finite(g_loss, "generator loss", utts)
        return g_loss, g_parts

    def _g_turn(self, micro, targets, adversarial: bool, gen_params, utts: list[str]):
        """The generator's turn: forward, loss and backward per micro-batch, then its
        optimizer step. Returns the averaged parts and each micro-batch's output
        (detached) as it was before the update."""
        n = len(micro)
        parts: dict = {}
        fakes = []
        for k, (wav, target) in enumerate(zip(micro, targets)):
            with self._no_sync(k, n, self.codec_fwd):
                with self._autocast():
                    out = self.codec_fwd(wav)
                g_loss, g_parts = self._g_loss(target, out, adversarial, n, utts)
                self._backward(g_loss / n, inputs=gen_params)
            fakes.append(out.wav.detach())
            _add_parts(parts, {"n_quantizers": out.n_quantizers}, n)
            _add_parts(parts, g_parts, n, "g_")
        self._optimizer_step(self.opt, self.sched, self.codec, "generator", utts)
        return parts, fakes

    def _d_turn(self, micro, targets, fakes, utts: list[str]) -> dict:
        """The discriminator's turn on ``fakes`` (detached outputs, one per micro-batch),
        or with ``fakes`` None on outputs of a new generator forward without gradients
        (training mode: EMA codebooks and quantizer dropout run as in any training
        forward), then its optimizer step. Returns the averaged ``d_*`` parts."""
        n = len(micro)
        parts: dict = {}
        gate_g, self.gate_g_loss = self.gate_g_loss, torch.zeros((), device=self.device)
        for k, (wav, target) in enumerate(zip(micro, targets)):
            if fakes is None:
                with torch.no_grad(), self._autocast():
                    fake = self.codec(wav).wav.detach()
            else:
                fake = fakes[k]
            with self._no_sync(k, n, self.disc_fwd):
                d_loss, d_parts = self._d_loss(target, fake, gate_g, utts)
                self._backward(d_loss / n)
            _add_parts(parts, d_parts, n, "d_")
        self._optimizer_step(self.opt_d, self.sched_d, self.disc, "discriminator", utts)
        return parts

    def _step_d_first(self, micro, targets, adversarial, update_d, gen_params, batch):
        """``d_first`` (and every step without a discriminator update); see
        :meth:`_train_step`."""
        n = len(micro)
        parts: dict = {}
        if update_d:  # the gate compares with the generator turns before this step
            gate_g, self.gate_g_loss = self.gate_g_loss, torch.zeros((), device=self.device)
        for k, (wav, target) in enumerate(zip(micro, targets)):
            modules = (self.codec_fwd, self.disc_fwd) if update_d else (self.codec_fwd,)
            with self._no_sync(k, n, *modules):
                with self._autocast():
                    out = self.codec_fwd(wav)
                _add_parts(parts, {"n_quantizers": out.n_quantizers}, n)
                if update_d:
                    d_loss, d_parts = self._d_loss(target, out.wav.detach(), gate_g, batch.utts)
                    self._backward(d_loss / n)
                    if n == 1:
                        self._optimizer_step(
                            self.opt_d, self.sched_d, self.disc, "discriminator", batch.utts
                        )
                    _add_parts(parts, d_parts, n, "d_")
                g_loss, g_parts = self._g_loss(target, out, adversarial, n, batch.utts)
                self._backward(g_loss / n, inputs=gen_params)
                _add_parts(parts, g_parts, n, "g_")
        if update_d and n > 1:
            self._optimizer_step(self.opt_d, self.sched_d, self.disc, "discriminator", batch.utts)
        self._optimizer_step(self.opt, self.sched, self.codec, "generator", batch.utts)
        return parts

    def _guarded_step(self, batch) -> dict:
        try:
            return self._train_step(batch)
        except torch.OutOfMemoryError as exc:
            c = self.config
            raise TrainingOutOfMemoryError(
                f"out of memory at step {self.step} on utterances {batch.utts} "
                f"(batch_size {c.batch_size} x segment_duration {c.segment_duration} s): lower "
                f'them, e.g. --train_args "--batch_size {max(1, c.batch_size // 2)}"; '
                f"re-running stage 5 resumes from the last checkpoint. ({str(exc).splitlines()[0]})"
            ) from None

    def _clip(self, module: torch.nn.Module, what: str, utts: list[str]) -> None:
        c = self.config
        clip = c.grad_clip
        if module is self.disc and c.discriminator_grad_clip is not None:
            clip = c.discriminator_grad_clip
        max_norm = clip if clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
        if self.scaler is None:  # with fp16 the scaler skips overflowing steps itself
            self._check_finite(norm, what, utts)

    def validate(self) -> dict[str, float]:
        """Reconstruct every validation utterance with all codebooks; mean metrics (under
        DDP each rank takes its share and the sums are all-reduced). Compiled regions
        run eagerly here (utterances of any length)."""
        stance = (
            torch.compiler.set_stance("force_eager")
            if self.config.compile
            else contextlib.nullcontext()
        )
        with torch.no_grad(), stance:
            return self._validate()

    def _validate(self) -> dict[str, float]:
        self.codec.eval()
        sums: dict[str, float] = {}
        for i in self.valid_set.shard(self.dist.rank, self.dist.world_size):
            batch = self.valid_set[i]
            wav = batch.wav.to(self.device)
            out = self.codec(wav)
            if batch.target is not None:  # noisy/clean pairs: score against the clean target
                wav = batch.target.to(self.device)
            _, parts = self.loss.generator(
                wav, out.wav, None, None, out.commitment_loss, out.codebook_loss
            )
            ref, est = wav[0, 0].cpu().numpy(), out.wav[0, 0].float().cpu().numpy()
            metrics = {k: float(v) for k, v in parts.items()}
            metrics.update({k: float(v) for k, v in out.losses.items()})
            metrics["mel_distance"] = log_mel_distance(ref, est, self.codec.sample_rate)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            if self.writer is not None and i < self.config.valid_audio_examples:
                sr = self.codec.sample_rate
                self.writer.add_audio(
                    f"valid/{batch.utts[0]}/decoded", out.wav[0].cpu(), self.step, sr
                )
                if self.step == 0 or not any(r["phase"] == "valid" for r in self.history):
                    self.writer.add_audio(
                        f"valid/{batch.utts[0]}/reference", wav[0].cpu(), self.step, sr
                    )
        if self.dist.distributed:
            import torch.distributed as torch_dist

            keys = sorted(sums)
            t = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.device)
            torch_dist.all_reduce(t)
            sums = dict(zip(keys, t.tolist()))
        return {k: v / len(self.valid_set) for k, v in sums.items()}

    def _after_validation(self, metrics: dict[str, float]) -> None:
        """Record a validation; keep the ``keep_nbest_models`` best trained snapshots.

        The step-0 validation (the untrained model) is saved as ``0steps.pt`` but never
        competes for the n-best: it becomes the inference model only when no trained
        snapshot has a finite criterion (``max_steps 0``).
        """
        c = self.config
        self.history.append({"step": self.step, "phase": "valid", **metrics})
        if c.best_model_criterion not in metrics:
            raise KeyError(
                f"best_model_criterion {c.best_model_criterion!r} not among {sorted(metrics)}"
            )
        value = metrics[c.best_model_criterion]
        if math.isfinite(value) and self.step == 0:
            if self.dist.is_main:
                save_atomic(
                    model_file(c.to_dict(), self.codec.state_dict(), 0, metrics),
                    self._snapshot_path(0),
                )
        elif math.isfinite(value):
            self.nbest.append((value, self.step))
            self.nbest.sort()
            if self.dist.is_main and (value, self.step) in self.nbest[: c.keep_nbest_models]:
                save_atomic(
                    model_file(c.to_dict(), self.codec.state_dict(), self.step, metrics),
                    self._snapshot_path(self.step),
                )
            for _, s in self.nbest[c.keep_nbest_models :]:
                if self.dist.is_main:
                    self._snapshot_path(s).unlink(missing_ok=True)
            self.nbest = self.nbest[: c.keep_nbest_models]
        log.info(
            "step %d valid: %s (best %s %.4f at step %d)",
            self.step,
            " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())),
            self.crit,
            self.nbest[0][0] if self.nbest else float("nan"),
            self.nbest[0][1] if self.nbest else -1,
        )
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"valid/{k}", v, self.step)
            self.writer.flush()
        if self.dist.is_main:
            save_atomic(self._state(), self.out / "checkpoint.pt")
            with atomic_write(self.out / "history.json") as f:
                json.dump(self.history, f, indent=1)
            plot_history(self.history, self.out / "images")
        self.checkpoint_step = self.step
        barrier(self.dist)  # every rank can now resume from the same checkpoint

    def _average_nbest(self) -> Path | None:
        """Write ``<crit>.best.pt``, the average of the n-best trained snapshots
        ``<crit>.ave_<N>best.pt`` and the link ``<crit>.ave.pt`` to it.

        Only snapshots of trained steps are averaged; the untrained step-0 model (also
        listed by checkpoints of earlier versions) is used, alone and said so, only when
        there is no other.
        """
        trained = [(v, s) for v, s in self.nbest if s > 0]
        untrained = self._snapshot_path(0)
        if trained:
            if len(trained) < len(self.nbest):
                log.info("the untrained step-0 model is left out of the average")
            self.nbest = trained
            if untrained.exists():
                untrained.unlink()  # the inference model is a trained one
        elif self.nbest or untrained.exists():
            if not self.nbest:  # 0steps.pt holds the step-0 validation
                value = load_file(untrained, MODEL_FORMAT)["metrics"][
                    self.config.best_model_criterion
                ]
                self.nbest = [(float(value), 0)]
            log.warning(
                "no trained snapshot has a finite %s (max_steps %d): the inference model is "
                "the untrained step-0 model",
                self.crit,
                self.max_steps,
            )
        else:
            log.warning("no finite validation result: no averaged model written")
            return None
        c = self.config
        steps = [s for _, s in self.nbest]
        snaps = [load_file(self._snapshot_path(s), MODEL_FORMAT) for s in steps]
        best = self.out / f"{self.crit}.best.pt"
        save_atomic(snaps[0], best)
        avg = average_state_dicts([s["model"] for s in snaps])
        metrics = {f"{self.crit}.steps": steps, f"{self.crit}.values": [v for v, _ in self.nbest]}
        ave = self.out / f"{self.crit}.ave_{len(steps)}best.pt"
        save_atomic(model_file(c.to_dict(), avg, self.step, metrics), ave)
        link = self.out / f"{self.crit}.ave.pt"
        tmp = link.with_name(link.name + ".tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(ave.name, tmp)
        os.replace(tmp, link)
        log.info(
            "averaged steps %s (%s %s) into %s",
            steps,
            self.crit,
            [round(v, 4) for v, _ in self.nbest],
            ave,
        )
        return ave

    def run(self) -> Path | None:
        """Train until ``max_steps`` / ``max_epochs`` (resuming if possible), then write
        the averaged model (rank 0).

        Returns:
            Path | None: the averaged model file (None on ranks other than 0).

        Raises:
            NonFiniteLossError: on a NaN/inf loss or gradient.
            TrainingTimeBudgetReached: ``max_train_time`` used up (state checkpointed).
        """
        from humanfriendly import format_timespan, parse_timespan
        from torch.utils.tensorboard import SummaryWriter

        c = self.config
        start = time.time()
        budget = parse_timespan(c.max_train_time) if c.max_train_time else None
        if self.dist.is_main:
            self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step or None)
        n_params = sum(p.numel() for p in self.codec.parameters())
        log.info(
            "codec %s: %.3f M parameters, %d Hz, hop %d, %d x %d codebooks, %.3f kbps max; %d train / %d valid utterances",
            c.codec,
            n_params / 1e6,
            self.codec.sample_rate,
            self.codec.hop_length,
            self.codec.n_codebooks,
            self.codec.codebook_size,
            self.codec.bitrate(),
            len(self.train_set.utts),
            len(self.valid_set),
        )
        log.info(
            "%d steps (max_steps %d, max_epochs %s); global batch %d = %d rank(s) x %d "
            "micro-batch(es) x %d; amp %s",
            self.max_steps,
            c.max_steps,
            c.max_epochs,
            c.batch_size,
            self.dist.world_size,
            c.accum_grad,
            c.batch_size // (self.dist.world_size * c.accum_grad),
            c.amp,
        )
        if self.step == 0:
            self._after_validation(self.validate())
        loader = DataLoader(
            self.train_set,
            batch_size=None,
            sampler=range(self.step + 1, self.max_steps + 1),
            num_workers=c.num_workers,
            collate_fn=identity_collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator(),  # keeps the global RNG (quantizer dropout) untouched
        )
        acc: dict[str, float] = {}
        counts: dict[str, int] = {}
        t0, n_acc = time.time(), 0
        bar = tqdm(
            total=self.max_steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=None if self.dist.is_main else True,
        )
        for batch in loader:
            self.step += 1
            try:
                parts = self._guarded_step(batch)
            except NonFiniteLossError as exc:  # host checks (no device_skip)
                if c.nonfinite_policy == "stop":
                    raise
                self.n_skipped += 1
                log.warning(
                    "skipped batch %d (%d skipped so far): %s", self.step, self.n_skipped, exc
                )
                self.opt.zero_grad(set_to_none=True)
                if self.opt_d is not None:
                    self.opt_d.zero_grad(set_to_none=True)
                bar.update(1)
                continue
            # kept on the device; read (one copy) at logging and validation steps
            self.steplog.add(self.step, batch.utts, parts, self._checks, self._skips)
            bar.update(1)
            log_now = self.step % c.log_interval == 0 or self.step == self.max_steps
            valid_now = self.step % c.valid_interval == 0 or self.step == self.max_steps
            # under DDP the budget is agreed on (a collective read) at log/valid steps only
            over_budget = (
                budget is not None
                and (log_now or valid_now or not self.dist.distributed)
                and any_true(time.time() - start > budget, self.dist, self.device)
            )
            if log_now or valid_now or over_budget:
                n_acc += self._read_steps(acc, counts)  # raises on a skipped step (stop)
            if log_now:
                dt = time.time() - t0
                means = {k: v / counts[k] for k, v in acc.items()}  # d_* only on D steps
                if "d_total" in counts:
                    means["d_update_fraction"] = counts["d_total"] / max(n_acc, 1)
                if self.scaler is not None:
                    means["amp_scale"] = float(self.scaler.get_scale())
                means["lr"] = self.opt.param_groups[0]["lr"]
                means["steps_per_s"] = n_acc / dt
                means["audio_s_per_s"] = n_acc * c.batch_size * c.segment_duration / dt
                log.info(
                    "step %d train: %s",
                    self.step,
                    " ".join(f"{k}={v:.4g}" for k, v in sorted(means.items())),
                )
                if self.writer is not None:
                    for k, v in means.items():
                        self.writer.add_scalar(f"train/{k}", v, self.step)
                self.history.append(
                    {
                        "step": self.step,
                        "phase": "train",
                        **{k: means[k] for k in means if k.startswith(("g_", "d_"))},
                    }
                )
                acc, counts, n_acc, t0 = {}, {}, 0, time.time()
            if valid_now or over_budget:
                self._after_validation(self.validate())
            if over_budget and self.step < self.max_steps:
                bar.close()
                if self.writer is not None:
                    self.writer.close()
                raise TrainingTimeBudgetReached(
                    f"max_train_time {c.max_train_time} used up after "
                    f"{format_timespan(time.time() - start)} at step {self.step} of "
                    f"{self.max_steps}; {self.out / 'checkpoint.pt'} holds the state: re-run "
                    f"stage 5 to continue"
                )
        bar.close()
        ave = self._average_nbest() if self.dist.is_main else None
        barrier(self.dist)
        if self.writer is not None:
            self.writer.close()
        return ave
