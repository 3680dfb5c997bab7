"""AudioDec rung (d): training steps of symAD through codectk's real ``Trainer`` against
the authors' own ``trainer/autoencoder.py`` ``Trainer._train_step`` (run as released,
imported by path), on the same speech batches, with the same starting weights and EMA
codebooks.

Three steps: step 1 trains with the metric losses only (45 mel + the VQ commitment summed
over the codebooks, EMA codebook updates); from step 2 the encoder, projector and
quantizer are frozen and the decoder trains against the MSD + MPD, the generator first
and then the discriminator on an output recomputed by the updated generator
(``trainer/autoencoder.py:62-126``; codectk ``gan_step_order: g_first_regenerate``,
``discriminator_start_step`` = their ``start_steps.discriminator`` + 1, as our steps
count from 1). Compared: every loss term, the gradient norms of both networks before
their optimizer steps (neither clips: ``*_grad_norm: -1``), and after steps 1 and 3 the
parameters, EMA codebooks and Adam moments.

Tolerances (float32 on both sides): losses and gradient norms rtol 1e-4; Adam moments
rtol 1e-3 plus 1e-5 of each tensor's largest entry; parameters 1e-6 absolute, except
entries whose gradient is below 1e-4 of the tensor's largest, which Adam (lr * m /
sqrt(v) ~ lr * sign(g) on the first steps) may move by up to 2 lr per step in either
direction when float rounding flips the sign of a gradient that is zero up to rounding.

Opt-in (``CODECTK_REF_AUDIODEC``, see test/parity/refs.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from codectk.config import build_train_config
from codectk.data.dataset import Batch
from codectk.train.trainer import Trainer
from test.parity import audiodec_ref, refs
from test.single_thread import one_torch_thread  # noqa: F401

G_LR, D_LR = 1e-4, 2e-4
D_START = 1  # their start_steps.discriminator (0-based steps): our step 2
N_STEPS = 3


@pytest.fixture(scope="module")
def ad():
    return audiodec_ref.load(refs.checkout("CODECTK_REF_AUDIODEC"))


def _our_conf() -> dict:
    g = audiodec_ref.GENERATOR
    return {
        "codec": "symad",
        "codec_conf": audiodec_ref.symad_codec_conf(),
        "discriminator": "combined",
        "discriminator_conf": audiodec_ref.discriminator_conf(),
        "loss": "dac",
        "loss_conf": {
            "weights": {
                "mel": 45.0,
                "adv": 1.0,
                "feat": 2.0,
                "commit": float(g["codebook_num"]),  # their sum over codebooks
                "codebook": 0.0,
            },
            "mel": {
                "windows": [audiodec_ref.MEL["fft_size"]],
                "hop_lengths": [audiodec_ref.HOP],
                "n_mels": [audiodec_ref.MEL["n_mels"]],
                "log_weight": 2.302585093,
                "mag_weight": 0.0,
                "eps": 1.0e-10,
                "power_floor": 1.0e-10,
            },
        },
        "optim": "adam",
        "optim_conf": {"lr": G_LR, "betas": [0.5, 0.9], "weight_decay": 0.0},
        "optim2": "adam",
        "optim2_conf": {"lr": D_LR, "betas": [0.5, 0.9], "weight_decay": 0.0},
        "scheduler2": "steplr",
        "scheduler2_conf": {"step_size": 200000, "gamma": 0.5},
        "batch_size": 2,
        "segment_duration": 40 * audiodec_ref.HOP / audiodec_ref.SAMPLE_RATE,
        "max_steps": N_STEPS,
        "grad_clip": 0.0,
        "discriminator_start_step": D_START + 1,
        "freeze_modules": ["encoder", "projector", "quantizer"],
        "freeze_from_step": D_START + 1,
        "gan_step_order": "g_first_regenerate",
        "keep_nbest_models": 1,
    }


def _their_trainer(ad, gen, disc, out_dir: Path):
    """Their Trainer as ``codecTrain.py`` builds it (criteria :191-213, optimizers and
    schedulers :150-187) from the symAD config's values at the tiny sizes."""
    config = {
        "outdir": str(out_dir),
        "train_max_steps": 10**6,
        "paradigm": "efficient",
        "start_steps": {"generator": 0, "discriminator": D_START},
        **audiodec_ref.LOSS_CONFIG,
        "lambda_vq_loss": 1.0,
        "generator_grad_norm": -1,
        "discriminator_grad_norm": -1,
    }
    criterion = audiodec_ref.their_criteria(ad)
    opt = {
        "generator": torch.optim.Adam(
            gen.parameters(), lr=G_LR, betas=(0.5, 0.9), weight_decay=0.0
        ),
        "discriminator": torch.optim.Adam(
            disc.parameters(), lr=D_LR, betas=(0.5, 0.9), weight_decay=0.0
        ),
    }
    sched = {
        "generator": torch.optim.lr_scheduler.StepLR(opt["generator"], 200000, gamma=1.0),
        "discriminator": torch.optim.lr_scheduler.MultiStepLR(
            opt["discriminator"], milestones=[200000, 400000], gamma=0.5
        ),
    }
    trainer = ad.trainer.Trainer(
        steps=0,
        epochs=0,
        data_loader=None,
        model={"generator": gen, "discriminator": disc},
        criterion=criterion,
        optimizer=opt,
        scheduler=sched,
        config=config,
    )
    trainer.tqdm = tqdm(disable=True)  # created by their run()
    return trainer


def _spy_grad_norms(opt: torch.optim.Optimizer, norms: list[float]) -> None:
    """Record the global gradient norm of ``opt``'s parameters at each ``step``."""
    step = opt.step

    def spied(*a, **k):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        return step(*a, **k)

    opt.step = spied


def _compare_state(
    ours: Trainer,
    theirs,
    g_names: dict,
    d_names: dict,
    after: int,
    lrs=(G_LR, D_LR),
    moment_rtol: float = 1e-3,
    moment_atol: float = 1e-5,
    init: dict | None = None,
) -> None:
    """Parameters, Adam moments (and EMA codebooks) after step ``after``; ``g_names`` and
    ``d_names`` map our keys to theirs. With ``init`` (our parameters before step 1,
    keyed ``codec.<key>`` / ``disc.<key>``) the comparison is by tensor: each Adam moment
    within 5% of theirs (norm of the difference), and each parameter's change within 5%
    of theirs over the entries whose gradient is not below 1e-4 of the tensor's largest."""
    their_g = dict(theirs.model["generator"].named_parameters())
    their_d = dict(theirs.model["discriminator"].named_parameters())
    their_g_buf = dict(theirs.model["generator"].named_buffers())
    for module, names, their, opt_o, opt_t, lr in (
        (ours.codec, g_names, their_g, ours.opt, theirs.optimizer["generator"], lrs[0]),
        (ours.disc, d_names, their_d, ours.opt_d, theirs.optimizer["discriminator"], lrs[1]),
    ):
        for key, p in module.named_parameters():
            if key not in names:  # the vocoder phase's frozen analyzer: checked by the caller
                continue
            t = their[names[key]]
            msg = f"step {after}: {key}"
            s_o, s_t = opt_o.state.get(p, {}), opt_t.state.get(t, {})
            assert s_o.keys() == s_t.keys(), msg
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in s_o and init is not None:
                    rel = float((s_o[moment] - s_t[moment]).norm() / s_t[moment].norm())
                    assert rel <= 0.05, f"{msg} {moment}: {rel:.3g} of theirs apart"
                elif moment in s_o:
                    scale = float(s_t[moment].abs().max())
                    torch.testing.assert_close(
                        s_o[moment],
                        s_t[moment],
                        rtol=moment_rtol,
                        atol=moment_atol * scale + 1e-30,
                        msg=lambda m, msg=msg, moment=moment: f"{msg} {moment}: {m}",
                    )
            diff = (p.detach() - t.detach()).abs()
            if "exp_avg" in s_t:
                g = s_t["exp_avg"].abs()
                kept = g >= 1e-4 * float(g.max())
                assert float(diff.max()) <= 2 * lr * after + 1e-6, msg
                if init is None:
                    assert float(torch.where(kept, diff, 0.0).max()) <= 1e-6, msg
                else:
                    prefix = "disc" if module is ours.disc else "codec"
                    update = (t.detach() - init[f"{prefix}.{key}"])[kept]
                    rel = float(diff[kept].norm()) / max(float(update.norm()), 1e-12)
                    assert rel <= 0.05, f"{msg}: updates differ by {rel:.3g} of theirs"
            else:
                assert float(diff.max()) <= 1e-6, msg
    for key, buf in ours.codec.quantizer.named_buffers():
        their_key = g_names.get(f"quantizer.{key}")
        if their_key is None:
            continue
        t = their_g_buf[their_key]
        t = t.t() if t.dim() == 2 else t  # their codebooks are (D, V)
        torch.testing.assert_close(buf, t, rtol=1e-4, atol=1e-6, msg=f"step {after}: {key}")


def test_three_symad_steps_equal_the_authors(ad, tmp_path: Path, dumped):
    torch.manual_seed(0)
    gen, disc = audiodec_ref.their_generator(ad), audiodec_ref.their_discriminator(ad)
    ours = Trainer(build_train_config(_our_conf()), tmp_path / "exp", *dumped.values())
    g_names = audiodec_ref.load_generator_(ours.codec, gen)
    d_names = audiodec_ref.load_discriminator_(ours.disc, disc)
    theirs = _their_trainer(ad, gen, disc, tmp_path / "theirs")
    norms = {k: [] for k in ("G_ours", "G_theirs", "D_ours", "D_theirs")}
    _spy_grad_norms(ours.opt, norms["G_ours"])
    _spy_grad_norms(ours.opt_d, norms["D_ours"])
    _spy_grad_norms(theirs.optimizer["generator"], norms["G_theirs"])
    _spy_grad_norms(theirs.optimizer["discriminator"], norms["D_theirs"])
    k = audiodec_ref.GENERATOR["codebook_num"]
    for step in range(1, N_STEPS + 1):
        batch = ours.train_set[step]
        wav = batch.wav.clone()
        torch.manual_seed(step)
        theirs.total_train_loss.clear()
        theirs._train_step(wav.clone())
        t = {key.split("/", 1)[1]: v for key, v in theirs.total_train_loss.items()}
        torch.manual_seed(step)
        ours.step = step
        o = ours._train_step(Batch(wav=wav.clone(), utts=batch.utts, lengths=batch.lengths))
        assert theirs.steps == step
        pairs = {
            "mel_loss": 45.0 * o["g_mel"],
            "train/vqloss": k * o["g_commit"],  # their _vq_loss name (trainerGAN.py:392-401)
            "generator_loss": o["g_total"],
        }
        if step > D_START:
            pairs.update(
                {
                    "adversarial_loss": o["g_adv"] + 2.0 * o["g_feat"],
                    "feature_matching_loss": o["g_feat"],
                    "real_loss": o["d_real"],
                    "fake_loss": o["d_fake"],
                    "discriminator_loss": o["d_total"],
                }
            )
        else:
            assert "d_total" not in o and "discriminator_loss" not in t
        assert set(pairs) <= set(t), sorted(t)
        for name, value in pairs.items():
            assert value == pytest.approx(t[name], rel=1e-4), f"step {step}: {name}"
        for key in ("G", "D"):
            assert norms[f"{key}_ours"] == pytest.approx(norms[f"{key}_theirs"], rel=1e-4), key
        if step in (1, N_STEPS):
            _compare_state(ours, theirs, g_names, d_names, step)
    assert len(norms["G_ours"]) == N_STEPS and len(norms["D_ours"]) == N_STEPS - D_START
