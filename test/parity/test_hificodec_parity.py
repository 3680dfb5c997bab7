"""HiFi-Codec's training pieces against AcademiCodec (opt-in: CODECTK_REF_ACADEMICODEC).

AcademiCodec is not on PyPI: set ``CODECTK_REF_ACADEMICODEC`` to a checkout of
github.com/yangdongchao/AcademiCodec (docs/parity.md records the commit checked). Rungs:
(a) the loss terms of ``academicodec/models/hificodec/train.py:219-287`` (written here from
reading it; ``mel_spectrogram``, ``feature_loss``, ``generator_loss`` and
``discriminator_loss`` are AcademiCodec's own functions); (b) the MPD + MSD + MS-STFT
discriminators of ``train.py:77-79`` against ``conf/hificodec_16k_320d.yaml``'s, forward
and backward with copied weights; (c) the group-residual quantizer with learned codebooks
(``models.py:430-535``); and the generator (encoder + decoder) on copied weights.

Tolerances: float64 where AcademiCodec's code runs in it (discriminators, quantizer):
1e-9 of the largest value (codectk's MS-STFT windows, stored float32-rounded, recomputed
in float64 for the comparison); its ``mel_spectrogram`` builds float32 windows and
filterbanks, so the mel loss is compared in float32 (relative 1e-5); the generator in
float32 (1e-5 of the largest value).
"""

from __future__ import annotations

import json
import types

import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from codectk.config import load_train_config
from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES
from codectk.models import CODECS
from codectk.quantization.grvq import GroupResidualVectorQuantizer
from test.conftest import REPO, bundled_flacs
from test.parity import refs
from test.parity.compat import legacy_stft, positional_librosa_mel
from test.parity.convs import (
    EffectiveWeightGrads,
    conv_pairs,
    convs,
    copy_convs,
    float64_stft_windows,
    ms_stft_first_conv_kind,
    norm_kind,
)


@pytest.fixture(scope="module")
def root():
    refs.require_package("torchaudio")
    return refs.checkout("CODECTK_REF_ACADEMICODEC")


def academicodec(root, dotted: str, *hollow: str):
    return refs.import_from(root, dotted, hollow=("academicodec.models", *hollow))


@pytest.fixture(scope="module")
def models(root):
    return academicodec(
        root, "academicodec.models.hificodec.models", "academicodec.models.hificodec"
    )


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hparams(root, name: str) -> types.SimpleNamespace:
    path = root / "egs" / f"HiFi-Codec-{name.replace('_', '-')}" / f"config_{name}.json"
    return types.SimpleNamespace(**json.loads(path.read_text()))


def speech(seconds: float, dtype=torch.float64) -> torch.Tensor:
    """A real 16 kHz utterance excerpt (B = 2: it and a 0.7-scaled copy), (B, 1, T)."""
    wav, sr = sf.read(bundled_flacs()[1], dtype="float64")
    x = torch.from_numpy(wav[4000 : 4000 + int(seconds * sr)])
    return torch.stack([x, 0.7 * x])[:, None].to(dtype)


def degraded(x: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.8 * x + 0.01 * torch.randn(x.shape, generator=g, dtype=x.dtype)


def close(ours: torch.Tensor, ref: torch.Tensor, rel: float, msg: str = "") -> None:
    """|ours - ref| <= rel x max |ref| elementwise."""
    scale = float(ref.detach().abs().max())
    err = float((ours.detach() - ref.detach()).abs().max())
    torch.testing.assert_close(
        ours,
        ref,
        rtol=0,
        atol=rel * scale,
        msg=f"{msg}: max error {err:.3g}, max value {scale:.3g}",
    )


# ------------------------------------------------------------------ (a) losses
@pytest.mark.parametrize("name", ["16k_320d", "24k_320d"])
def test_mel_loss_equals_academicodec(root, name):
    md = academicodec(
        root, "academicodec.models.hificodec.meldataset", "academicodec.models.hificodec"
    )
    legacy_stft(md)
    md.librosa_mel_fn = positional_librosa_mel
    h = hparams(root, name)
    x = speech(0.5, torch.float32)
    y = degraded(x)
    if h.sampling_rate != 16000:  # the bundled speech is 16 kHz; any waveform will do here
        x, y = x.repeat_interleave(3, -1)[..., ::2], y.repeat_interleave(3, -1)[..., ::2]

    def mel(wav, n_fft, hop, win):
        return md.mel_spectrogram(wav.squeeze(1), n_fft, h.num_mels, h.sampling_rate, hop, win,
                                  h.fmin, h.fmax_for_loss)  # fmt: skip

    # train.py:219-240 and 268-274: y_mel is the dataset's mel_loss (meldataset.py:208-217,
    # fmax_for_loss), the others are computed in the loop
    ref = (
        F.l1_loss(mel(x, h.n_fft, h.hop_size, h.win_size),
                                    mel(y, h.n_fft, h.hop_size, h.win_size)) * 45
        + F.l1_loss(mel(x, 512, 120, 512), mel(y, 512, 120, 512))
        + F.l1_loss(mel(x, 256, 60, 256), mel(y, 256, 60, 256))
    )  # fmt: skip
    conf = load_train_config(REPO / "conf" / f"hificodec_{name}.yaml")
    loss = LOSSES.build(conf.loss, {"sample_rate": h.sampling_rate, **conf.loss_conf})
    torch.testing.assert_close(loss.mel_loss(x, y), ref, rtol=1e-5, atol=0)
    assert float(ref) > 1.0


def _outputs(seed: int, maps: list[int], logits_is_map: list[bool]):
    """Random discriminator outputs: AcademiCodec's (logits, fmaps) per sub-discriminator
    (HiFi-GAN's fmaps end with the logits map) and codectk's [[maps..., logits]]."""
    g = torch.Generator().manual_seed(seed)
    theirs, ours = [], []
    for k, (n, with_logits) in enumerate(zip(maps, logits_is_map)):
        feats = [torch.randn(2, 3, 5 + k, generator=g, dtype=torch.float64) for _ in range(n)]
        logits = torch.randn(2, 1, 4 + k, generator=g, dtype=torch.float64)
        theirs.append((logits.flatten(1), [*feats, logits] if with_logits else feats))
        ours.append([*feats, logits, logits] if with_logits else [*feats, logits])
    return theirs, ours


def test_gan_and_total_losses_equal_academicodec(root, models):
    # 5 MPD (5 convs + logits map), 3 MSD (7 + logits map), 5 MS-STFT (5 maps, no logits)
    maps, with_logits = [5] * 5 + [7] * 3 + [5] * 5, [True] * 8 + [False] * 5
    real_t, real_o = _outputs(1, maps, with_logits)
    fake_t, fake_o = _outputs(2, maps, with_logits)
    parts = {"f": slice(0, 5), "s": slice(5, 8), "stft": slice(8, 13)}
    # train.py:277-287 (loss_gen_all), models.py:330-361
    gen = fm = 0
    for sl in parts.values():
        gen = gen + models.generator_loss([t[0] for t in fake_t[sl]])[0]
        fm = fm + models.feature_loss([t[1] for t in real_t[sl]], [t[1] for t in fake_t[sl]])
    x = speech(0.3, torch.float32).double()
    y = degraded(x)
    conf = load_train_config(REPO / "conf" / "hificodec_16k_320d.yaml")
    loss = LOSSES.build(conf.loss, {"sample_rate": 16000, **conf.loss_conf})
    mel = loss.mel_loss(x, y)  # compared with AcademiCodec's in the test above
    codebook, commit = torch.tensor(0.31, dtype=x.dtype), torch.tensor(0.29, dtype=x.dtype)
    loss_q = 1.0 * codebook + 0.25 * commit  # models.py:476-477 (values of one stage)
    total_ref = gen + fm + mel + loss_q * 10
    total, got = loss.generator(x, y, fake_o, real_o, commit, codebook)
    torch.testing.assert_close(got["adv"], gen, rtol=1e-12, atol=0)
    torch.testing.assert_close(2 * got["feat"], fm, rtol=1e-12, atol=0)
    torch.testing.assert_close(total, total_ref, rtol=1e-12, atol=0)
    # train.py:246-260: the discriminators' losses, summed
    d_ref = 0
    for sl in parts.values():
        d_ref = (
            d_ref
            + models.discriminator_loss([t[0] for t in real_t[sl]], [t[0] for t in fake_t[sl]])[0]
        )
    d, _ = loss.discriminator(real_o, fake_o)
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=0)


# ------------------------------------------------------------ (b) discriminators
MEMBERS = {  # codectk member -> (AcademiCodec class, sub-discriminators, conv norms)
    "mpd": ("MultiPeriodDiscriminator", 5, ["weight"] * 6 * 5),
    "hifigan_msd": ("MultiScaleDiscriminator", 3, ["spectral"] * 8 + ["weight"] * 16),
    "ms_stft": ("MultiScaleSTFTDiscriminator", 5, (["none"] + ["weight"] * 5) * 5),
}


def _member(root, models, name: str):
    """AcademiCodec's discriminator of train.py:77-79 and codectk's member of
    conf/hificodec_16k_320d.yaml, float64, the reference's spectral-norm vectors u, v
    converged (30 power iterations in its own order: v = W^T u, u = W v)."""
    conf = load_train_config(REPO / "conf" / "hificodec_16k_320d.yaml").discriminator_conf
    assert conf["logits_as_features"] == ["mpd", "hifigan_msd"]
    ours = float64_stft_windows(DISCRIMINATORS.build(name, conf["discriminators"][name]).double())
    torch.manual_seed(0)
    if name == "ms_stft":
        msstftd = academicodec(
            root, "academicodec.models.encodec.msstftd", "academicodec.models.encodec"
        )
        ref = msstftd.MultiScaleSTFTDiscriminator(32)
    else:
        ref = getattr(models, MEMBERS[name][0])()
    ref = ref.double()
    with torch.no_grad():
        for c in convs(ref):
            if norm_kind(c) == "spectral":
                w = c.weight_orig.flatten(1)
                for _ in range(30):
                    c.weight_v.copy_(F.normalize(w.t() @ c.weight_u, dim=0))
                    c.weight_u.copy_(F.normalize(w @ c.weight_v, dim=0))
    return ref, ours


@pytest.mark.parametrize("name", list(MEMBERS))
def test_discriminator_layout_matches_academicodec(root, models, name):
    ref, ours = _member(root, models, name)
    pairs = conv_pairs(ref, ours)
    for i, (a, b) in enumerate(pairs):
        for attr in ("stride", "padding", "dilation", "groups"):
            assert getattr(a, attr) == getattr(b, attr), (i, attr)
    ref_kinds = MEMBERS[name][2]
    assert [norm_kind(a) for a, _ in pairs] == ref_kinds
    first = ms_stft_first_conv_kind()  # the MS-STFT's first convs (convs.py)
    assert [norm_kind(b) for _, b in pairs] == [first if r == "none" else r for r in ref_kinds]


@pytest.mark.parametrize("name", list(MEMBERS))
def test_discriminator_forward_backward_equals_academicodec(root, models, name):
    """Eval mode: the spectral norm of the raw-audio MSD scale uses the stored u, v on both
    sides (in training mode the power iterations run in another order, docs/parity.md).
    Compared: logits, feature maps (HiFi-GAN's end with the logits), the generator's LSGAN
    and feature losses with their gradient w.r.t. the generated waveform, the discriminator
    loss with its gradients w.r.t. every effective weight, bias and the input."""
    ref, ours = _member(root, models, name)
    copy_convs(ref, ours)
    ref.eval(), ours.eval()
    rel = 1e-9
    seconds = 0.13 if name == "ms_stft" else 0.05  # MS-STFT needs 2048 samples
    x, y = speech(seconds)[:1], degraded(speech(seconds))[:1]
    y_ref, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    with EffectiveWeightGrads(ref) as g_ref, EffectiveWeightGrads(ours) as g_ours:
        if name == "ms_stft":  # train.py:256-257, 279-280
            (r_logits, fr), (g_logits, fg) = ref(x), ref(y_ref)
        else:  # train.py:247, 252, 277-278
            r_logits, g_logits, fr, fg = ref(x, y_ref)
        with g_ours.forward_context():
            real_o = ours(x)
        with g_ours.forward_context():
            fake_o = ours(y_ours)
        assert len(real_o) == len(r_logits) == MEMBERS[name][1]
        maps_r, maps_f = [], []  # codectk's feature maps as the combined discriminator
        for k, (o_r, o_f) in enumerate(zip(real_o, fake_o)):  # gives them (logits_as_features)
            shape = r_logits[k].shape
            close(o_r[-1].reshape(shape), r_logits[k], rel, f"real logits {k}")
            close(o_f[-1].reshape(shape), g_logits[k], rel, f"fake logits {k}")
            maps_r.append(o_r if name != "ms_stft" else o_r[:-1])
            maps_f.append(o_f if name != "ms_stft" else o_f[:-1])
            assert len(maps_r[-1]) == len(fr[k])
            for a, b in zip(fr[k] + fg[k], maps_r[-1] + maps_f[-1]):
                close(b.reshape(a.shape), a, rel, f"feature map of sub-discriminator {k}")
        outs_r = [[*m, o[-1]] for m, o in zip(maps_r, real_o)]
        outs_f = [[*m, o[-1]] for m, o in zip(maps_f, fake_o)]
        conf = load_train_config(REPO / "conf" / "hificodec_16k_320d.yaml")
        loss = LOSSES.build(
            conf.loss, {**conf.loss_conf, "sample_rate": 16000, "weights": {"mel": 0.0}}
        )
        # the generator's adversarial and feature terms (train.py:281-287): their gradient
        # w.r.t. the generated waveform (what trains the generator)
        g_ref_loss = models.generator_loss(g_logits)[0] + models.feature_loss(fr, fg)
        g_loss, _ = loss.generator(x, y_ours, outs_f, outs_r)
        close(g_loss, g_ref_loss, rel)
        (gy_ref,) = torch.autograd.grad(g_ref_loss, y_ref, retain_graph=True)
        (gy,) = torch.autograd.grad(g_loss, y_ours, retain_graph=True)
        close(gy, gy_ref, rel, "generator loss gradient")
        # the discriminator's loss (train.py:248-258), here on the undetached fake
        d_ref = models.discriminator_loss(r_logits, g_logits)[0]
        d_ours, _ = loss.discriminator(real_o, fake_o)
        close(d_ours, d_ref, rel)
        d_ref.backward()
        d_ours.backward()
    for i, (a, b) in enumerate(zip(g_ref.grads(), g_ours.grads())):
        close(b, a, rel, f"conv {i} weight grad")
    for i, (a, b) in enumerate(conv_pairs(ref, ours)):
        close(b.bias.grad, a.bias.grad, rel, f"conv {i} bias grad")
    close(y_ours.grad, y_ref.grad, rel, "input grad")


# ----------------------------------------------------------------- (c) quantizer
def test_learned_grvq_equals_academicodec(root, models):
    h = hparams(root, "16k_320d")
    torch.manual_seed(0)
    ref = models.Quantizer(h).double().train()
    ours = GroupResidualVectorQuantizer(512, 2, 2, 1024, codebook_update="gradient").double()
    ours.train()
    with torch.no_grad():
        for g in range(2):
            ours.groups[g].layers[0].embedding.weight.copy_(
                ref.quantizer_modules[g].embedding.weight
            )
            ours.groups[g].layers[1].embedding.weight.copy_(
                ref.quantizer_modules2[g].embedding.weight
            )
    gen = torch.Generator().manual_seed(3)
    z = 0.05 * torch.randn(2, 512, 30, generator=gen, dtype=torch.float64)
    z_ref, z_ours = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    q_ref, loss_q, idx = ref(z_ref)  # models.py:494-508
    out = ours(z_ours)
    codes_ref = torch.stack([i.view(2, 30) for i in idx], dim=1)  # 4 x (B * F,) -> (B, 4, F)
    assert torch.equal(out.codes, codes_ref)
    assert len(codes_ref.unique()) > 8
    torch.testing.assert_close(out.z_q, q_ref, rtol=1e-12, atol=1e-15)
    mine = (
        h.codebook_loss_lambda * out.codebook_loss + h.commitment_loss_lambda * out.commitment_loss
    )
    torch.testing.assert_close(mine, loss_q, rtol=1e-12, atol=0)
    target = torch.randn(q_ref.shape, generator=gen, dtype=torch.float64)
    ((q_ref * target).sum() + 10 * loss_q).backward()
    ((out.z_q * target).sum() + 10 * mine).backward()
    torch.testing.assert_close(z_ours.grad, z_ref.grad, rtol=1e-10, atol=1e-14)
    for g in range(2):
        for stage, mods in enumerate([ref.quantizer_modules, ref.quantizer_modules2]):
            torch.testing.assert_close(
                ours.groups[g].layers[stage].embedding.weight.grad,
                mods[g].embedding.weight.grad,
                rtol=1e-10,
                atol=1e-14,
            )


# ------------------------------------------------------------------ generator
def test_generator_equals_academicodec_on_copied_weights(root, models):
    h = hparams(root, "16k_320d")
    torch.manual_seed(0)
    enc, dec = models.Encoder(h).eval(), models.Generator(h).eval()
    conf = load_train_config(REPO / "conf" / "hificodec_16k_320d.yaml")
    codec = CODECS.build(conf.codec, conf.codec_conf).eval()
    for ref_part, part in [(enc, codec.encoder), (dec, codec.decoder)]:
        copy_convs(ref_part, part)
        norms = [m for m in ref_part.modules() if isinstance(m, nn.GroupNorm)]
        ours = [m for m in part.modules() if isinstance(m, nn.GroupNorm)]
        assert len(norms) == len(ours)
        with torch.no_grad():
            for a, b in zip(norms, ours):
                assert (a.num_groups, a.eps) == (b.num_groups, b.eps)
                b.weight.copy_(torch.rand_like(b.weight) + 0.5)
                a.weight.copy_(b.weight)
                b.bias.copy_(0.1 * torch.randn_like(b.bias))
                a.bias.copy_(b.bias)
    wav = speech(0.2, torch.float32)
    with torch.no_grad():
        z_ref = enc(wav)
        z = codec.encoder(wav)
        close(z, z_ref, 1e-5, "latent")
        close(codec.decoder(z_ref), dec(z_ref), 1e-5, "waveform")
