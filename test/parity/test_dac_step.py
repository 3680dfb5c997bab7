"""DAC parity, rung (d): codectk's real ``Trainer`` step against the authors' training step.

The authors' step is not in the ``dac`` package: it is ``train_loop`` in their
``scripts/train.py`` (repository commit c7cfc5d2647e26471dc394f95846a0830e7bec34, whose
``dac/`` files equal the 1.0.0 package's).
:func:`codectk.benchmarks._dac_reference_step.reference_step` is written from reading it
(lines cited there; the GPU benchmark times the same step as its anchor), with
``conf/final/16khz.yml``'s settings: AdamW lr 1e-4, betas (0.8, 0.99) and torch's other
defaults (weight decay 0.01; ``train.py:31``, ``16khz.yml:27-28``), ExponentialLR
0.999996 per step (``train.py:35-37``, ``16khz.yml:29``), no AMP (``16khz.yml:31``:
audiotools' ``Accelerator`` then scales, unscales and steps as plain torch), the mel loss
of ``16khz.yml:63-69`` and the weights of ``16khz.yml:41-46``.

codectk's side is :class:`~codectk.train.trainer.Trainer` built from
``conf/dac_16k_6kbps.yaml`` (so its optimizer, scheduler, clipping and loss settings are
the ones tested) with only the sizes made tiny on both sides: DAC with encoder width 4,
strides (2, 4) (even strides: descript-audio-codec 1.0.0's odd-stride transposed convs
drop output samples, see test/convert/test_parity.py), 3 codebooks of 16 x 4; the
authors' ``Discriminator`` with period 2 and windows 512 and 256 (its channels are fixed:
32..1024 in the MPD, 32 in the MRD; rung (b) covers every period and window). Weights are copied from the authors' models
with codectk's converter. Each side starts from the same seed (their global random
streams are kept apart); the batches are three real-speech crops of 1040 samples from the
bundled corpus (the mel loss's 2048-sample window needs more than 1024; a multiple of the
period, so DAC's MPD pads a whole period).

Compared after each of 3 steps, in float32 (the authors' losses cast audio to float32):

* every loss term (discriminator, mel, adversarial, feature, commitment, codebook, total):
  2e-6 relative (measured: at most 3e-7, float32 rounding; without DAC's MPD padding the
  discriminator's gradient norm is already 4e-5 off);
* the gradient norms before clipping (2e-6 relative) and the clipping thresholds (10 for
  the discriminator, 1000 for the generator; at these sizes the norms stay below them,
  about 3.8 and 180-265, so the thresholds are checked where they are passed);
* every parameter's gradient before clipping: 1e-4 of its largest magnitude (rung (b)
  measured float32 rounding of weight-norm gains' gradients up to 2.5e-5 of that); on
  steps 2 and 3, where the weights already differ by the rounding of the earlier updates
  and a weight-norm gain's gradient (a sum with much cancellation) can move relatively
  more, the larger of that and 1e-5 of the network's largest gradient entry;
* the learning rates;
* after steps 1 and 3, AdamW's moments ``exp_avg`` and ``exp_avg_sq`` (1e-4 and 2e-4 of
  their largest magnitude) and every parameter. A parameter moves by about lr x
  m̂ / sqrt(v̂) per step, which on step 1 is lr x g / (|g| + eps): about lr x sign(g),
  whatever |g|. Where the reference's gradient is within the gradient tolerance E of
  zero, the two sides' signs may differ by rounding alone, so such an entry may differ by
  up to 2 lr per step; elsewhere the update's error is at most
  lr x eps x E / ((|g| + eps)(|g| - E + eps)) on step 1, and on later steps the error
  that the moments' measured differences give through m̂ / (sqrt(v̂) + eps). The test
  applies these bounds entry by entry (plus 1e-6 of the tensor's largest magnitude for
  float32 rounding of the parameter itself) and reports how many entries needed the
  2 lr allowance.
"""

from __future__ import annotations

import pytest
import torch

from codectk.benchmarks._dac_reference_step import ReferenceState, reference_step
from codectk.config import build_train_config, load_yaml
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.parity.dac_reference import (
    assert_rel_close,
    copy_discriminator,
    copy_generator,
    discriminator_pairs,
    generator_pairs,
)
from test.parity.refs import require_package
from test.single_thread import one_torch_thread  # noqa: F401

dac = require_package("dac")  # skips the module outside tools/venv-compare
audiotools = require_package("audiotools")

SR = 16000
SEGMENT = 1040  # samples: a multiple of the hop (8) and of the period 2; > 2048 / 2
TINY = dict(
    sample_rate=SR,
    encoder_dim=4,
    encoder_rates=[2, 4],
    latent_dim=None,
    decoder_dim=32,
    decoder_rates=[4, 2],
    n_codebooks=3,
    codebook_size=16,
    codebook_dim=4,
    quantizer_dropout=0.5,
)
# the same model as codectk's codec_conf
OURS = dict(
    sample_rate=SR,
    encoder=dict(dim=4, rates=[2, 4], latent_dim=None),
    decoder=dict(dim=32, rates=[4, 2]),
    quantizer=dict(n_codebooks=3, codebook_size=16, codebook_dim=4),
    quantizer_dropout=0.5,
)
PERIODS, FFT_SIZES = [2], [512, 256]
SEED = 1234
LOSS_TOL, NORM_TOL, GRAD_TOL, GRAD_TOL_NET = 2e-6, 2e-6, 1e-4, 1e-5
EXP_AVG_TOL, EXP_AVG_SQ_TOL = 1e-4, 2e-4


def _trainer(tmp_path, dumped) -> Trainer:
    conf = load_yaml(REPO / "conf" / "dac_16k_6kbps.yaml")
    conf["codec_conf"].update(OURS)
    conf["discriminator_conf"]["mpd"]["periods"] = PERIODS
    conf["discriminator_conf"]["mrd"]["fft_sizes"] = FFT_SIZES
    conf.update(
        batch_size=2,
        segment_duration=SEGMENT / SR,
        max_steps=3,
        valid_interval=3,
        log_interval=1,
        valid_max_duration=0.5,
        keep_nbest_models=1,
        num_workers=0,
    )
    return Trainer(build_train_config(conf), tmp_path / "exp", dumped["train"], dumped["valid"])


def _reference() -> ReferenceState:
    """The authors' state at the tiny sizes, in float32 on the CPU."""
    discriminator = dict(periods=PERIODS, fft_sizes=FFT_SIZES, sample_rate=SR)
    return ReferenceState(TINY, discriminator)


class ClipSpy:
    """Records what codectk's trainer passes to and gets from ``clip_grad_norm_``."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = torch.nn.utils.clip_grad_norm_

        def spy(parameters, max_norm, *args, **kwargs):
            parameters = list(parameters)
            grads = {id(p): p.grad.clone() for p in parameters if p.grad is not None}
            norm = real(parameters, max_norm, *args, **kwargs)
            self.calls.append((max_norm, norm.detach().clone(), grads))
            return norm

        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-30)


def _by_name(pairs, grads_by_id):
    return {our_name: grads_by_id[id(p)] for _, _, our_name, p in pairs if id(p) in grads_by_id}


def _compare_grads(pairs, ref_grads, our_grads, step, what):
    """Per tensor within GRAD_TOL of its largest entry; from step 2 on (when the weights
    differ by the previous updates' rounding) also within GRAD_TOL_NET of the network's
    largest gradient entry, whichever is larger."""
    net = max(float(g.abs().max()) for g in ref_grads.values() if g is not None)
    for ref_name, _, our_name, p in pairs:
        g_ref = ref_grads.get(ref_name)
        g = our_grads.get(id(p))
        if g_ref is None or g is None:
            assert g_ref is None and g is None, f"{what} {our_name}: gradient on one side only"
            continue
        tol = GRAD_TOL
        if step > 1:
            tol = max(tol, GRAD_TOL_NET * net / max(float(g_ref.abs().max()), 1e-30))
        assert_rel_close(g, g_ref, tol, f"{what} gradient {our_name}")


class AdamBound:
    """Per-entry bound on |p_ours - p_ref| accumulated over AdamW steps (module doc)."""

    def __init__(self, pairs):
        self.bound = {our_name: torch.zeros_like(p_ref) for _, p_ref, our_name, _ in pairs}
        self.flips = 0

    def add_step(
        self, pairs, opt_ref, opt, lr, step, grads_ref, grads, betas=(0.8, 0.99), eps=1e-8
    ):
        for ref_name, p_ref, our_name, p in pairs:
            st_ref, st = opt_ref.state[p_ref], opt.state[p]
            m_ref, v_ref = st_ref["exp_avg"], st_ref["exp_avg_sq"]
            c1, c2 = 1 - betas[0] ** step, 1 - betas[1] ** step
            if step == 1:  # m̂ = g, sqrt(v̂) = |g|: the update is lr g / (|g| + eps)
                g = grads_ref[ref_name].abs()
                e = 2 * float((grads[our_name] - grads_ref[ref_name]).abs().max())
                near_zero = g <= e
                b = lr * eps * e / ((g + eps) * (g - e + eps).clamp(min=eps))
            else:  # the moments' measured differences through m̂ / (sqrt(v̂) + eps)
                dm = (st["exp_avg"] - m_ref).abs().max() / c1
                dv = (st["exp_avg_sq"] - v_ref).abs().max() / c2
                m_hat, v_hat = m_ref.abs() / c1, v_ref / c2
                s = v_hat.sqrt()
                ds = (v_hat + dv).sqrt() - s  # the most sqrt(v̂) can move for |dv|
                near_zero = m_hat <= dm
                b = lr * (dm * (s + eps) + m_hat * ds) / ((s + eps) * (s - ds + eps).clamp(min=eps))
            b = torch.where(near_zero, torch.full_like(b, 2.1 * lr), b.clamp(max=2.1 * lr))
            self.flips += int(near_zero.sum())
            self.bound[our_name] += b

    def check(self, pairs, what):
        for ref_name, p_ref, our_name, p in pairs:
            diff = (p.detach() - p_ref.detach()).abs()
            allowed = self.bound[our_name] + 1e-6 * float(p_ref.abs().max())
            bad = diff > allowed
            assert not bad.any(), (
                f"{what} {our_name} ({ref_name}): {int(bad.sum())} entries beyond the Adam "
                f"bound, worst {float((diff - allowed).max()):.3g}"
            )


def _compare_moments(pairs, opt_ref, opt, what):
    for _, p_ref, our_name, p in pairs:
        st_ref, st = opt_ref.state[p_ref], opt.state[p]
        assert float(st["step"]) == float(st_ref["step"]), our_name
        assert_rel_close(
            st["exp_avg"], st_ref["exp_avg"], EXP_AVG_TOL, f"{what} exp_avg {our_name}"
        )
        assert_rel_close(
            st["exp_avg_sq"], st_ref["exp_avg_sq"], EXP_AVG_SQ_TOL, f"{what} exp_avg_sq {our_name}"
        )


def test_three_training_steps_equal_the_authors(tmp_path, dumped, monkeypatch):
    t = _trainer(tmp_path, dumped)
    ref = _reference()
    copy_generator(ref.generator, t.codec)
    copy_discriminator(ref.discriminator, t.disc)
    g_pairs = generator_pairs(ref.generator, t.codec)
    d_pairs = discriminator_pairs(ref.discriminator, t.disc)
    spy = ClipSpy(monkeypatch)
    g_bound, d_bound = AdamBound(g_pairs), AdamBound(d_pairs)
    batches = [t.train_set[i].wav for i in (1, 2, 3)]
    assert batches[0].shape == (2, 1, SEGMENT)

    torch.manual_seed(SEED)
    rng_ref = torch.get_rng_state()
    torch.manual_seed(SEED)
    rng_ours = torch.get_rng_state()
    for step, wav in enumerate(batches, start=1):
        lr_g, lr_d = (o.param_groups[0]["lr"] for o in (ref.optimizer_g, ref.optimizer_d))
        torch.set_rng_state(rng_ref)
        out = reference_step(ref, wav)
        rng_ref = torch.get_rng_state()
        torch.set_rng_state(rng_ours)
        t.step = step
        spy.calls.clear()
        parts = t._train_step(t.train_set[step])
        rng_ours = torch.get_rng_state()
        assert torch.equal(rng_ours, rng_ref), f"step {step}: random streams diverged"

        where = f"step {step}"
        for ours_key, ref_key in (
            ("d_total", "adv/disc_loss"),
            ("g_mel", "mel/loss"),
            ("g_adv", "adv/gen_loss"),
            ("g_feat", "adv/feat_loss"),
            ("g_commit", "vq/commitment_loss"),
            ("g_codebook", "vq/codebook_loss"),
            ("g_total", "loss"),
        ):
            assert _rel(parts[ours_key], out[ref_key]) <= LOSS_TOL, (
                f"{where} {ours_key}: {parts[ours_key]} vs {float(out[ref_key])}"
            )
        (d_clip, d_norm, d_grads), (g_clip, g_norm, g_grads) = spy.calls
        assert (d_clip, g_clip) == (10.0, 1000.0)
        assert _rel(d_norm, out["other/grad_norm_d"]) <= NORM_TOL, where
        assert _rel(g_norm, out["other/grad_norm"]) <= NORM_TOL, where
        _compare_grads(d_pairs, out["d_grads"], d_grads, step, f"{where} discriminator")
        _compare_grads(g_pairs, out["g_grads"], g_grads, step, f"{where} generator")
        assert t.opt.param_groups[0]["lr"] == ref.optimizer_g.param_groups[0]["lr"]
        assert t.opt_d.param_groups[0]["lr"] == ref.optimizer_d.param_groups[0]["lr"]

        g_bound.add_step(
            g_pairs, ref.optimizer_g, t.opt, lr_g, step, out["g_grads"], _by_name(g_pairs, g_grads)
        )
        d_bound.add_step(
            d_pairs,
            ref.optimizer_d,
            t.opt_d,
            lr_d,
            step,
            out["d_grads"],
            _by_name(d_pairs, d_grads),
        )
        if step in (1, 3):
            _compare_moments(g_pairs, ref.optimizer_g, t.opt, f"{where} generator")
            _compare_moments(d_pairs, ref.optimizer_d, t.opt_d, f"{where} discriminator")
            g_bound.check(g_pairs, f"{where} generator")
            d_bound.check(d_pairs, f"{where} discriminator")
    print(
        f"entries given the 2 lr allowance (gradient or first moment within the measured "
        f"difference of zero), summed over steps: generator {g_bound.flips} of "
        f"{3 * sum(p.numel() for p in t.codec.parameters())}, discriminator "
        f"{d_bound.flips} of {3 * sum(p.numel() for p in t.disc.parameters())}"
    )


@pytest.mark.parametrize("key", ["grad_clip", "discriminator_grad_clip"])
def test_the_dac_config_clips_as_the_authors(key):
    conf = build_train_config(load_yaml(REPO / "conf" / "dac_16k_6kbps.yaml"))
    assert getattr(conf, key) == {"grad_clip": 1000.0, "discriminator_grad_clip": 10.0}[key]
