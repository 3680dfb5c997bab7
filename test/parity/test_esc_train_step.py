"""ESC rung (d): adversarial training steps (conf/esc_16k_base_adv.yaml at tiny widths)
through codectk's real ``Trainer`` against the authors' step, on the same speech batches
with the same starting weights.

Their step needs ``accelerate``/``wandb``, so it is written here from reading
``scripts/trainer_adv.py`` (cited line by line in :func:`_their_step`), with their
model, discriminator and losses imported by path. Three steps: step 1 pre-trains
without quantization or discriminator (``freeze_vq``); steps 2 and 3 quantize with the
streams our stream dropout drew (handed to their step: the draw itself is compared in
test/models/test_esc.py) and train the discriminator after the generator, on the
generator's output from before its update; before step 3 both restart the generator's
AdamW (``trainer_adv.py:140-143``; codectk ``optim_reset_step``).

Compared: every loss term, the gradient norms of both networks before clipping, and
after steps 1 and 3 every parameter and AdamW moment. Tolerances (float32): losses rtol
1e-4; gradient norms rtol 1e-4, the generator's 5e-3 from step 2 on (the mel loss's
gradient jumps where a mel bin sits at its 1e-5 floor or on its target, and the two
reconstructions differ by float rounding, 3e-8); moments rtol 1e-3 plus 1e-4 (step 1)
or 1e-3 (step 3) of each tensor's largest entry; parameters after step 1 within 2e-6, except entries whose
gradient is below 1e-4 of the tensor's largest, which Adam (about lr * sign(g) on the
first steps) may move by up to 2 lr when rounding flips the sign of a gradient that is
zero up to rounding; after step 3 every entry within Adam's bound (2 lr a step) and each
tensor's update (its change over the 3 steps) within 5% of theirs (the ~1% gradient
perturbations flip the sign of Adam's step for small gradient entries).

The discriminator is clipped at 1000 on both sides here (the authors: 10,
``trainer_adv.py:104``), as codectk has one clipping norm; the norms measured stay far
below both.

Opt-in (``CODECTK_REF_ESC``, see test/parity/refs.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codectk.config import build_train_config
from codectk.data.dataset import Batch
from codectk.train import trainer as trainer_module
from codectk.train.trainer import Trainer
from test.parity import esc_ref, refs
from test.single_thread import one_torch_thread  # noqa: F401

LR = 1e-4
T = 5 * 320 - 80  # the authors' clips are 320 F - 80 samples (scripts/utils.py:40)
WEIGHTS = {"cm": 0.25, "cb": 1.0, "mel": 15.0, "stft": 0.0, "gen": 1.0, "feat": 2.0}
PRETRAIN = 1  # their pretraining_steps: 0-based step 0 pre-trains
N_STEPS = 3
D_CLIP = 10.0  # trainer_adv.py:104


@pytest.fixture(scope="module")
def esc():
    return esc_ref.load(refs.checkout("CODECTK_REF_ESC"))


def _our_conf() -> dict:
    return {
        "codec": "esc",
        "codec_conf": {
            **esc_ref.OURS,
            "pretrain_steps": PRETRAIN,
            "dropout_rate": 0.75,
            "stft_loss_weight": WEIGHTS["stft"],
            "stft_loss_power": 0.3,
        },
        "discriminator": "dac",
        "discriminator_conf": esc_ref.discriminator_conf(),
        "loss": "esc",
        "loss_conf": {
            "weights": {
                "mel": WEIGHTS["mel"],
                "adv": WEIGHTS["gen"],
                "feat": WEIGHTS["feat"],
                "commit": WEIGHTS["cm"],
                "codebook": WEIGHTS["cb"],
            },
        },
        "optim": "adamw",
        "optim_conf": {"lr": LR},
        "optim2": "adamw",
        "optim2_conf": {"lr": LR},
        "batch_size": 2,
        "segment_duration": T / esc_ref.SAMPLE_RATE,
        "max_steps": N_STEPS,
        "grad_clip": 1000.0,
        "discriminator_grad_clip": D_CLIP,
        "gan_step_order": "g_first",
        "discriminator_start_step": PRETRAIN + 1,
        "optim_reset_step": PRETRAIN + 2,
        "keep_nbest_models": 1,
        "seed": 53,
    }


class Theirs:
    """The authors' adversarial training state: model, discriminator, losses, AdamWs
    (``trainer_adv.py:16-59`` and ``scripts/utils.py:48-49``; the default
    ``--scheduler_type constant`` leaves the learning rate alone)."""

    def __init__(self, esc, model, disc):
        self.model, self.disc = model, disc
        self.mel = esc.gen.MelSpectrogramLoss()
        self.stft = esc.gen.ComplexSTFTLoss(power_law=True)
        self.gan = esc.gan.GANLoss(disc)  # trainer_adv.py:131
        self.opt_g = torch.optim.AdamW(model.parameters(), LR)
        self.opt_d = torch.optim.AdamW(disc.parameters(), LR)
        self.n = 0  # their pbar.n: 0-based steps

    def step(self, x: torch.Tensor, s: int) -> dict[str, float]:
        """``trainer_adv.py:137-145`` (optimizer renewal) and ``train_step`` (:61-113)."""
        if PRETRAIN > 0 and self.n == PRETRAIN + 1:  # :140-143
            self.opt_g = torch.optim.AdamW(self.model.parameters(), LR)
        freeze_vq = self.n < PRETRAIN  # :65
        out = self.model(x=x, x_feat=None, num_streams=s, freeze_codebook=freeze_vq)  # :71
        out["mel_loss"] = self.mel(out["raw_audio"], out["recon_audio"])  # :72
        out["stft_loss"] = self.stft(out["raw_feat"], out["recon_feat"])  # :73
        if not freeze_vq:  # :75-80
            out["gen_loss"], out["feat_loss"] = self.gan.generator_loss(
                fake=out["recon_audio"], real=out["raw_audio"]
            )
        else:
            out["gen_loss"] = out["feat_loss"] = torch.zeros(x.size(0))
        out["loss"] = (  # :82-87
            out["cm_loss"] * WEIGHTS["cm"]
            + out["cb_loss"] * WEIGHTS["cb"]
            + out["mel_loss"] * WEIGHTS["mel"]
            + out["stft_loss"] * WEIGHTS["stft"]
            + out["gen_loss"] * WEIGHTS["gen"]
            + out["feat_loss"] * WEIGHTS["feat"]
        )
        self.opt_g.zero_grad()  # :90-93
        out["loss"].mean().backward()
        norms = {"G": float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1e3))}
        self.opt_g.step()
        if not freeze_vq:  # :96-105
            out["disc_loss"] = self.gan.discriminator_loss(
                fake=out["recon_audio"], real=out["raw_audio"]
            )
            self.opt_d.zero_grad()
            out["disc_loss"].mean().backward()
            norms["D"] = float(torch.nn.utils.clip_grad_norm_(self.disc.parameters(), D_CLIP))
            self.opt_d.step()
        self.n += 1
        losses = {k: float(v.mean()) for k, v in out.items() if k.endswith("loss")}
        return {**losses, **{f"norm_{k}": v for k, v in norms.items()}}


def _compare(ours: Trainer, theirs: Theirs, g_names, d_names, after: int, init) -> None:
    """Parameters and AdamW moments after step ``after``; ``init`` holds our parameters
    before step 1 (the updates are compared from step 2 on, see the module doc)."""
    their_g = dict(theirs.model.named_parameters())
    their_d = dict(theirs.disc.named_parameters())
    for module, names, their, opt_o, opt_t in (
        (ours.codec, g_names, their_g, ours.opt, theirs.opt_g),
        (ours.disc, d_names, their_d, ours.opt_d, theirs.opt_d),
    ):
        for key, p in module.named_parameters():
            t = their[names[key]]
            msg = f"step {after}: {key}"
            s_o, s_t = opt_o.state.get(p, {}), opt_t.state.get(t, {})
            assert s_o.keys() == s_t.keys(), msg
            if "step" in s_t:
                assert float(s_o["step"]) == float(s_t["step"]), msg
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in s_o:
                    scale = float(s_t[moment].abs().max())
                    torch.testing.assert_close(
                        s_o[moment],
                        s_t[moment],
                        rtol=1e-3,
                        atol=(1e-4 if after == 1 else 1e-3) * scale + 1e-30,
                        msg=lambda m, msg=msg, moment=moment: f"{msg} {moment}: {m}",
                    )
            diff = (p.detach() - t.detach()).abs()
            assert float(diff.max()) <= 2 * LR * after + 2e-6, msg  # Adam's bound
            if "exp_avg" not in s_t:
                assert float(diff.max()) <= 2e-6, msg
                continue
            g = s_t["exp_avg"].abs()
            kept = g >= 1e-4 * float(g.max())  # not a gradient that is zero up to rounding
            if after == 1:
                assert float(torch.where(kept, diff, 0.0).max()) <= 2e-6, msg
            else:
                update = t.detach() - init[f"{module is ours.disc}.{key}"]
                rel = float(diff[kept].norm()) / max(float(update[kept].norm()), 1e-12)
                assert rel <= 0.05, f"{msg}: updates differ by {rel:.3g} of theirs"


def test_three_adversarial_steps_equal_the_authors(esc, tmp_path: Path, dumped, monkeypatch):
    torch.manual_seed(0)
    model = esc.codecs.ESC(**esc_ref.THEIRS)
    disc = esc_ref.their_discriminator(esc)
    ours = Trainer(build_train_config(_our_conf()), tmp_path / "exp", *dumped.values())
    g_names = esc_ref.load_generator_(ours.codec, model)
    d_names = esc_ref.load_discriminator_(ours.disc, disc)
    theirs = Theirs(esc, model.train(), disc.train())
    init = {f"False.{k}": p.detach().clone() for k, p in ours.codec.named_parameters()}
    init.update({f"True.{k}": p.detach().clone() for k, p in ours.disc.named_parameters()})
    norms: list[float] = []  # codectk's gradient norms before clipping, in call order
    clip = torch.nn.utils.clip_grad_norm_

    def spied(params, max_norm, *a, **k):
        norm = clip(params, max_norm, *a, **k)
        norms.append(float(norm))
        return norm

    monkeypatch.setattr(trainer_module.torch.nn.utils, "clip_grad_norm_", spied)
    for step in range(1, N_STEPS + 1):
        batch = ours.train_set[step]
        wav = batch.wav.clone()
        assert wav.shape[-1] == T
        torch.manual_seed(step)
        ours.step = step
        norms.clear()
        o = ours._train_step(Batch(wav=wav.clone(), utts=batch.utts, lengths=batch.lengths))
        monkeypatch.setattr(trainer_module.torch.nn.utils, "clip_grad_norm_", clip)
        s = round(o["n_quantizers"]) // 3
        torch.manual_seed(step)
        t = theirs.step(wav[:, 0].clone(), s)
        monkeypatch.setattr(trainer_module.torch.nn.utils, "clip_grad_norm_", spied)
        pairs = {
            "mel_loss": o["g_mel"],
            "loss": o["g_total"],
            "cm_loss": o.get("g_commit", 0.0),
            "cb_loss": o.get("g_codebook", 0.0),
        }
        if step > PRETRAIN:
            pairs.update(
                {"gen_loss": o["g_adv"], "feat_loss": o["g_feat"], "disc_loss": o["d_total"]}
            )
            for name, value in pairs.items():
                assert value == pytest.approx(t[name], rel=1e-4, abs=1e-7), f"{step}: {name}"
            # the mel loss's gradient is discontinuous where a mel bin sits at the 1e-5
            # clamp or on its target: the float32 difference of the two reconstructions
            # (3e-8) moves it by up to 1.3% (measured), and the generator's norm with it
            assert norms[0] == pytest.approx(t["norm_G"], rel=5e-3), step
            assert norms[1] == pytest.approx(t["norm_D"], rel=1e-4), step
            assert t["norm_D"] < 10.0  # the authors' D clip would not have acted either
        else:
            assert "d_total" not in o and "disc_loss" not in t
            for name, value in pairs.items():
                assert value == pytest.approx(t[name], rel=1e-4, abs=1e-7), f"{step}: {name}"
            assert norms == pytest.approx([t["norm_G"]], rel=1e-4), step
        if step in (1, N_STEPS):
            _compare(ours, theirs, g_names, d_names, step, init)
