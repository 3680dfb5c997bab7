"""LaDiffCodec's continuous-autoencoder training against the authors' code (opt-in:
CODECTK_REF_LADIFFCODEC).

LaDiffCodec is not on PyPI: set ``CODECTK_REF_LADIFFCODEC`` to a checkout of
github.com/haiciyang/LaDiffCodec (docs/parity.md records the commit checked). Rungs:
(a) the loss terms of ``srcs/train.py:57-149`` (``run_gen_loss``, ``run_disc_loss`` and
``g_loss`` of ``run_model`` are script functions: written here from reading them; the mel
loss and the clipped SDR are their ``srcs/losses/losses_fn.py``); (b) their MS-STFT
discriminator (``srcs/msstftd.py``) against ``conf/ladiffcodec_ae_16k.yaml``'s, forward and
backward with copied weights; the autoencoder (``srcs/modules/seanet.py``) on copied weights.

Their package cannot be imported whole (``srcs/modules/__init__.py`` imports a missing
``transformer_discrete`` and ``labml_helpers``; ``srcs/losses/losses_fn.py`` imports
``asteroid``, not in tools/venv-compare): the modules are loaded one by one, with the few
names their relative imports need, and asteroid's ``MultiSrcNegSDR`` (asteroid 0.7,
``asteroid/losses/sdr.py``, ``sdr_type="sdsdr"``) written below from its source.

Tolerances: float64 on both sides, 1e-9 of the largest value (codectk's STFT windows,
stored float32-rounded, recomputed for the comparison); the mel loss 1e-6 relative
(torchaudio's filterbank is built in float32).
"""

from __future__ import annotations

import sys
import types

import pytest
import soundfile as sf
import torch

from codectk.config import load_train_config
from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES
from codectk.models import CODECS
from test.conftest import REPO, bundled_flacs
from test.parity import refs
from test.parity.convs import (
    EffectiveWeightGrads,
    conv_pairs,
    copy_convs,
    float64_stft_windows,
    ms_stft_first_conv_kind,
    norm_kind,
)

CONF = REPO / "conf" / "ladiffcodec_ae_16k.yaml"


class _MultiSrcNegSDR(torch.nn.Module):
    """asteroid's ``MultiSrcNegSDR`` for ``sdr_type="sdsdr"`` with its defaults
    (zero_mean, take_log, EPS 1e-8), written from asteroid/losses/sdr.py."""

    def __init__(self, sdr_type: str):
        super().__init__()
        assert sdr_type == "sdsdr"

    def forward(self, est_targets, targets):
        targets = targets - targets.mean(dim=2, keepdim=True)
        est_targets = est_targets - est_targets.mean(dim=2, keepdim=True)
        dot = torch.sum(est_targets * targets, dim=2, keepdim=True)
        energy = torch.sum(targets**2, dim=2, keepdim=True) + 1e-8
        scaled = dot * targets / energy
        noise = est_targets - targets
        sdr = torch.sum(scaled**2, dim=2) / (torch.sum(noise**2, dim=2) + 1e-8)
        return -torch.mean(10 * torch.log10(sdr + 1e-8), dim=-1)


@pytest.fixture(scope="module")
def root():
    refs.require_package("torchaudio")
    return refs.checkout("CODECTK_REF_LADIFFCODEC")


@pytest.fixture(scope="module")
def losses_fn(root):
    if "asteroid" not in sys.modules:
        for name in ("asteroid", "asteroid.losses", "asteroid.losses.sdr"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["asteroid.losses.sdr"].MultiSrcNegSDR = _MultiSrcNegSDR
    return refs.import_from(root, "srcs.losses.losses_fn", hollow=("srcs.losses",))


@pytest.fixture(scope="module")
def modules(root):
    """srcs.modules with the names msstftd.py and seanet.py import from it."""
    conv = refs.import_from(root, "srcs.modules.conv", hollow=("srcs.modules",))
    lstm = refs.import_from(root, "srcs.modules.lstm", hollow=("srcs.modules",))
    pkg = sys.modules["srcs.modules"]
    for name in ("NormConv1d", "NormConv2d", "SConv1d", "SConvTranspose1d"):
        setattr(pkg, name, getattr(conv, name))
    pkg.SLSTM = lstm.SLSTM
    return pkg


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def speech(seconds: float) -> torch.Tensor:
    """A real 16 kHz utterance excerpt (B = 2: it and a 0.7-scaled copy), float64 (B, 1, T)."""
    wav, sr = sf.read(bundled_flacs()[2], dtype="float64")
    x = torch.from_numpy(wav[6000 : 6000 + int(seconds * sr)])
    return torch.stack([x, 0.7 * x])[:, None]


def degraded(x: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.8 * x + 0.01 * torch.randn(x.shape, generator=g, dtype=x.dtype)


def close(ours: torch.Tensor, ref: torch.Tensor, rel: float = 1e-9, msg: str = "") -> None:
    scale = float(ref.detach().abs().max())
    err = float((ours.detach() - ref.detach()).abs().max())
    torch.testing.assert_close(
        ours,
        ref,
        rtol=0,
        atol=rel * scale,
        msg=f"{msg}: max error {err:.3g}, max value {scale:.3g}",
    )


def _loss():
    conf = load_train_config(CONF)
    return LOSSES.build(conf.loss, {"sample_rate": 16000, **conf.loss_conf})


# ------------------------------------------------------------------ (a) losses
def test_mel_loss_equals_ladiffcodec(losses_fn):
    x, y = speech(0.5), degraded(speech(0.5))
    ref = losses_fn.melspec_loss_fn(x.float(), y.float(), range(5, 12))  # train.py:131
    torch.testing.assert_close(_loss().mel_loss(x, y).float(), ref, rtol=1e-5, atol=0)
    # only the last window counts in their loop: the 2048 one alone gives the same value
    torch.testing.assert_close(losses_fn.melspec_loss_fn(x.float(), y.float(), [11]), ref)
    assert float(ref) > 1e-3  # a real difference was measured


def test_sdr_loss_equals_ladiffcodec(losses_fn):
    x, y = speech(0.5), degraded(speech(0.5))
    sdr = losses_fn.ClippedSDR()
    loss = _loss()
    # model.py:194: sdr_loss(x, x_hat).mean(), the reference first
    torch.testing.assert_close(loss.sdr_loss(x, y), sdr(x, y).mean(), rtol=1e-12, atol=0)
    # above 30 dB SD-SDR the clipped loss is flat
    near = x + 1e-6 * (y - x)
    torch.testing.assert_close(loss.sdr_loss(x, near), sdr(x, near).mean())
    assert float(loss.sdr_loss(x, near)) == -30.0


def _ms_stft_outputs(seed: int):
    """Random outputs of 3 sub-discriminators with 5 feature maps each: theirs
    ([logits], [[fmaps]]) and codectk's [[fmaps..., logits]]."""
    g = torch.Generator().manual_seed(seed)
    ours = [
        [torch.randn(2, 4, 7 + k, 5, generator=g, dtype=torch.float64) for _ in range(6)]
        for k in range(3)
    ]
    return ([o[-1] for o in ours], [o[:-1] for o in ours]), ours


def _run_gen_loss(logits_r, fmap_r, logits_g, fmap_g):
    """train.py:64-85 after the two discriminator calls."""
    k, n = len(fmap_g), len(fmap_g[0])
    l_g = l_feat = 0
    for d in range(len(fmap_r)):
        l_g += 1 / k * torch.mean(torch.max(torch.tensor(0), 1 - logits_g[d]))
        for layer in range(len(fmap_r[0])):
            l_feat += (
                1 / (k * n)
                * torch.mean(abs(fmap_r[d][layer] - fmap_g[d][layer]))
                / torch.mean(abs(fmap_r[d][layer]))
            )  # fmt: skip
    return l_g, l_feat


def _run_disc_loss(logits_r, logits_g):
    """train.py:96-105 after the two discriminator calls."""
    k = len(logits_g)
    return sum(
        1 / k * torch.mean(torch.max(torch.tensor(0), 1 - r) + torch.max(torch.tensor(0), 1 + g))
        for r, g in zip(logits_r, logits_g)
    )


def test_generator_and_discriminator_losses_equal_ladiffcodec(losses_fn):
    x, y = speech(0.3), degraded(speech(0.3))
    (lr, fr), real_o = _ms_stft_outputs(1)
    (lg, fg), fake_o = _ms_stft_outputs(2)
    l_g, l_feat = _run_gen_loss(lr, fr, lg, fg)
    l_t = torch.mean(torch.abs(x - y))  # train.py:130
    l_f = _loss().mel_loss(x, y)  # compared with theirs above
    l_orig = losses_fn.ClippedSDR()(x, y).mean()  # model.py:194, the first of nums (217)
    g_ref = 0.1 * l_t + l_f + 3 * l_g + 3 * l_feat + 0.1 * l_orig  # train.py:139
    total, parts = _loss().generator(x, y, fake_o, real_o, torch.zeros(()), torch.zeros(()))
    torch.testing.assert_close(parts["adv"], l_g, rtol=1e-12, atol=0)
    torch.testing.assert_close(parts["feat"], l_feat, rtol=1e-12, atol=0)
    torch.testing.assert_close(total, g_ref, rtol=1e-12, atol=0)
    d, _ = _loss().discriminator(real_o, fake_o)
    torch.testing.assert_close(d, _run_disc_loss(lr, lg), rtol=1e-12, atol=0)


# ------------------------------------------------------------ (b) discriminator
def _discriminators(root, modules):
    msstftd = refs.import_from(root, "srcs.msstftd")
    torch.manual_seed(0)
    ref = msstftd.MultiScaleSTFTDiscriminator(filters=32).double()  # train.py:345
    conf = load_train_config(CONF)
    ours = DISCRIMINATORS.build(conf.discriminator, conf.discriminator_conf).double()
    return ref, float64_stft_windows(ours)


def test_discriminator_layout_matches_ladiffcodec(root, modules):
    ref, ours = _discriminators(root, modules)
    pairs = conv_pairs(ref, ours)
    assert len(pairs) == 3 * 6
    for i, (a, b) in enumerate(pairs):
        for attr in ("stride", "padding", "dilation", "groups"):
            assert getattr(a, attr) == getattr(b, attr), (i, attr)
    ref_kinds = (["none"] + ["weight"] * 5) * 3  # msstftd.py:70-72: first conv without norm
    assert [norm_kind(a) for a, _ in pairs] == ref_kinds
    assert [norm_kind(b) for _, b in pairs] == ([ms_stft_first_conv_kind()] + ["weight"] * 5) * 3


def test_discriminator_forward_backward_equals_ladiffcodec(root, modules):
    ref, ours = _discriminators(root, modules)
    copy_convs(ref, ours)
    x, y = speech(0.3), degraded(speech(0.3))
    y_ref, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    loss = _loss()
    with EffectiveWeightGrads(ref) as g_ref, EffectiveWeightGrads(ours) as g_ours:
        (lr, fr), (lg, fg) = ref(x), ref(y_ref)  # train.py:64-65
        with g_ours.forward_context():
            real_o = ours(x)
        with g_ours.forward_context():
            fake_o = ours(y_ours)
        for k in range(3):
            for a, b in zip([*fr[k], lr[k]], real_o[k]):
                close(b, a, msg=f"real outputs {k}")
            for a, b in zip([*fg[k], lg[k]], fake_o[k]):
                close(b, a, msg=f"fake outputs {k}")
        # the generator's adversarial and feature terms and their input gradient
        l_g, l_feat = _run_gen_loss(lr, fr, lg, fg)
        adv_ref = 3 * l_g + 3 * l_feat
        no_rec = {"time": 0.0, "mel": 0.0, "sdr": 0.0}
        adv_loss = LOSSES.build("ladiffcodec_ae", {"sample_rate": 16000, "weights": no_rec})
        adv_ours, _ = adv_loss.generator(x, y_ours, fake_o, real_o)
        close(adv_ours, adv_ref)
        (gy_ref,) = torch.autograd.grad(adv_ref, y_ref, retain_graph=True)
        (gy,) = torch.autograd.grad(adv_ours, y_ours, retain_graph=True)
        close(gy, gy_ref, msg="generator loss gradient")
        # the discriminator loss (train.py:96-105), here on the undetached fake
        d_ref = _run_disc_loss(lr, lg)
        d_ours, _ = loss.discriminator(real_o, fake_o)
        close(d_ours, d_ref)
        d_ref.backward()
        d_ours.backward()
    for i, (a, b) in enumerate(zip(g_ref.grads(), g_ours.grads())):
        close(b, a, msg=f"conv {i} weight grad")
    for i, (a, b) in enumerate(conv_pairs(ref, ours)):
        close(b.bias.grad, a.bias.grad, msg=f"conv {i} bias grad")
    close(y_ours.grad, y_ref.grad, msg="input grad")


# ------------------------------------------------------------------ autoencoder
def test_autoencoder_equals_ladiffcodec_on_copied_weights(root, modules):
    seanet = refs.import_from(root, "srcs.modules.seanet")
    # model.py:52-55 with the README's step-2 settings
    kw = dict(channels=1, ratios=[8, 4], dimension=128, norm="weight_norm", causal=True,
              dilation_base=2, n_residual_layers=1, n_filters=32, lstm=2, kernel_size=7,
              last_kernel_size=7)  # fmt: skip
    torch.manual_seed(0)
    enc = seanet.SEANetEncoder(final_activation=None, **kw).double().eval()
    dec = seanet.SEANetDecoder(**kw).double().eval()
    conf = load_train_config(CONF)
    ae = CODECS.build(conf.codec, conf.codec_conf).double().eval()
    for ref_part, part in [(enc, ae.encoder), (dec, ae.decoder)]:
        copy_convs(ref_part, part)
        a = [m for m in ref_part.modules() if isinstance(m, torch.nn.LSTM)]
        b = [m for m in part.modules() if isinstance(m, torch.nn.LSTM)]
        assert len(a) == len(b) == 1
        b[0].load_state_dict(a[0].state_dict())
    x = speech(0.2)
    with torch.no_grad():
        z_ref = enc(x)
        close(ae.latent(x), z_ref, msg="latent")
        close(ae.synthesise(z_ref), dec(z_ref), msg="reconstruction")
