"""FreqCodec's training pieces against FunCodec 0.2.0 (the PyPI wheel, imported by path).

Rungs: (a) every loss term of ``funcodec/models/codec_freq.py`` on fixed tensors; (b) the
MS-STFT discriminator of the recipe (``encodec_multi_scale_stft_discriminator``,
``filters: 32``) forward and backward with copied weights; (c) the RVQ's training forward
(k-means init, codes, commitment, EMA update, dead codes, structured dropout). The loss
formulas of ``_forward_generator`` / ``_forward_discriminator`` are methods of a model that
needs its whole encoder, so they are written here from reading them (cited by line);
``Audio2Mel``, the discriminator and the quantizer are FunCodec's own code.

Tolerances: float64 on both sides where FunCodec allows it (losses, discriminator),
relative 1e-12 for the loss formulas and 1e-9 of the largest value for the discriminator
(codectk's normalised STFT windows, stored float32-rounded, recomputed in float64 for the
comparison), except the mel filterbank, which both sides round to float32
(librosa in two steps, codectk in one): relative 1e-5 on the mel loss. The quantizer runs
in float32 (FunCodec's buffers are float32): codes exactly, values within 1e-6.
"""

from __future__ import annotations

import random

import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from codectk.config import load_train_config
from codectk.discriminators import DISCRIMINATORS
from codectk.losses import LOSSES
from codectk.models import CODECS
from codectk.models.freqcodec import freqcodec_tiny_conf
from codectk.quantization.rvq import ResidualVectorQuantizer
from codectk.quantization.vq import kmeans as codectk_kmeans
from test.conftest import REPO, bundled_flacs
from test.parity import refs
from test.parity.compat import legacy_stft
from test.parity.convs import (
    EffectiveWeightGrads,
    conv_pairs,
    copy_convs,
    float64_stft_windows,
    ms_stft_first_conv_kind,
    norm_kind,
)

CONF = REPO / "conf" / "freqcodec_16k_16kbps.yaml"
HOLLOW = (
    "funcodec.models",
    "funcodec.models.discriminator",
    "funcodec.modules",
    "funcodec.modules.normed_modules",
    "funcodec.modules.quantization",
    "funcodec.train",
    "funcodec.torch_utils",
    "funcodec.losses",
    "funcodec.layers",
)


def funcodec(dotted: str):
    refs.require_package("torchaudio")  # FunCodec's modules import it (tools/venv-compare)
    return refs.import_distribution(dotted, hollow=HOLLOW)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def speech(seconds: float = 0.5) -> torch.Tensor:
    """A real 16 kHz utterance excerpt (B = 2: it and a 0.7-scaled copy), float64 (B, 1, T)."""
    wav, sr = sf.read(bundled_flacs()[0], dtype="float64")
    assert sr == 16000
    x = torch.from_numpy(wav[8000 : 8000 + int(seconds * sr)])
    return torch.stack([x, 0.7 * x])[:, None]


def degraded(x: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.8 * x + 0.01 * torch.randn(x.shape, generator=g, dtype=x.dtype)


# ------------------------------------------------------------------ (a) losses
@pytest.mark.parametrize("power_spec", [False, True])
def test_mel_loss_equals_funcodec(power_spec):
    codec_freq = legacy_stft(funcodec("funcodec.models.codec_freq"))
    x, y = speech(), degraded(speech())
    # FreqCodec.__init__ (codec_freq.py:201-213): one Audio2Mel per window 2^5..2^10,
    # n_fft 1024, hop = window / 4, 64 bands
    transforms = [
        codec_freq.Audio2Mel(sampling_rate=16000, win_length=2**p, hop_length=2**p // 4,
                             n_mel_channels=64).double()
        for p in range(5, 11)
    ]  # fmt: skip
    # _forward_generator, codec_freq.py:487-502
    ref = torch.zeros((), dtype=torch.float64)
    for t in transforms:
        if not power_spec:
            m_x, m_y = t(x), t(y)
            l1, l2 = F.l1_loss(m_x, m_y), F.mse_loss(m_x, m_y)
        else:
            (m_x, p_x), (m_y, p_y) = t(x, True), t(y, True)
            l1 = F.l1_loss(m_x, m_y) * 0.5 + F.l1_loss(p_x, p_y) * 0.5
            l2 = F.mse_loss(m_x, m_y) * 0.5 + F.mse_loss(p_x, p_y) * 0.5
        ref = ref + (l1 + l2)
    ref = ref / len(transforms)
    loss = LOSSES.build("funcodec", {"sample_rate": 16000, "mel": {"power_spec_loss": power_spec}})
    ours = loss.mel_loss(x, y)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=0)
    assert float(ref) > 0.1  # a real difference was measured


def _disc_outputs(seed: int, n_disc: int = 3, n_feat: int = 5):
    """Random discriminator outputs in FunCodec's [(logits, [fmaps])] and codectk's
    [[fmaps..., logits]] layouts (the same tensors)."""
    g = torch.Generator().manual_seed(seed)
    ours = []
    for k in range(n_disc):
        feats = [
            torch.randn(2, 4, 6 + k, 5, generator=g, dtype=torch.float64) for _ in range(n_feat)
        ]
        ours.append([*feats, torch.randn(2, 1, 3 + k, 2, generator=g, dtype=torch.float64)])
    theirs = [(o[-1], o[:-1]) for o in ours]
    return theirs, ours


def test_adversarial_feature_and_total_losses_equal_funcodec():
    x, y = speech(0.2), degraded(speech(0.2))
    (real_t, real_o), (fake_t, fake_o) = _disc_outputs(1), _disc_outputs(2)
    for o in fake_o:
        for t in o:
            t.requires_grad_(True)
    # generator turn, codec_freq.py:476, 509-535 (feat_match_layer_start = -1: all maps)
    adv, feat = [], []
    for (_, r_inter), (f_logits, f_inter) in zip(real_t, fake_t):
        adv.append(torch.mean(F.relu(1 - f_logits)))
        feat += [F.l1_loss(r.detach(), f) for r, f in zip(r_inter, f_inter)]
    l1 = torch.nn.L1Loss(reduction="mean")
    adv_ref, feat_ref = torch.stack(adv).mean(), torch.stack(feat).mean()
    commit = torch.tensor(0.37, dtype=torch.float64)
    loss = LOSSES.build("funcodec", {"sample_rate": 16000, "mel": {"power_spec_loss": True}})
    mel_ref = loss.mel_loss(x, y)  # compared with FunCodec's in test_mel_loss_equals_funcodec
    gen_ref = l1(x, y) * 1.0 + mel_ref * 1.0 + adv_ref * (1 / 9) + feat_ref * (100 / 9)
    total_ref = gen_ref + commit  # + enc_quant_loss: zero gradient, see the test below
    total, parts = loss.generator(x, y, fake_o, real_o, commit, torch.zeros((), dtype=x.dtype))
    for name, value in [("adv", adv_ref), ("feat", feat_ref), ("time", l1(x, y)),
                        ("gen", gen_ref), ("total", total_ref)]:  # fmt: skip
        torch.testing.assert_close(parts[name], value.detach(), rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(total, fake_o[0][0])
    (grad_ref,) = torch.autograd.grad(total_ref, fake_t[0][1][0])
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=0)
    # discriminator turn, codec_freq.py:590-596
    d_ref = torch.stack(
        [
            torch.mean(F.relu(1 - r[0])) + torch.mean(F.relu(1 + f[0]))
            for r, f in zip(real_t, fake_t)
        ]
    ).mean()
    d, d_parts = loss.discriminator(real_o, fake_o)
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=0)


def test_enc_quant_loss_has_no_gradient():
    """FunCodec's extra ``enc_quant_loss = MSE(z_q, z)^2`` (codec_freq.py:472, 531-532) does
    not train anything: with the straight-through z_q, z_q - z is constant in z."""
    vq = funcodec("funcodec.modules.quantization.vq")
    torch.manual_seed(0)
    rvq = vq.ResidualVectorQuantizer(dimension=8, n_q=3, bins=16, kmeans_iters=3, use_ddp=True)
    z = torch.randn(2, 8, 40, requires_grad=True)
    res = rvq(z, sample_rate=16000)
    enc_quant = F.mse_loss(res.quantized, z) ** 2
    (grad,) = torch.autograd.grad(enc_quant, z)
    assert float(enc_quant) > 0 and torch.count_nonzero(grad) == 0


# ------------------------------------------------------------ (b) discriminator
def close(ours: torch.Tensor, ref: torch.Tensor, msg: str = "") -> None:
    """Equal within 1e-9 of the largest magnitude (float64 on both sides)."""
    scale = float(ref.detach().abs().max())
    err = float((ours.detach() - ref.detach()).abs().max())
    torch.testing.assert_close(
        ours,
        ref,
        rtol=0,
        atol=1e-9 * scale,
        msg=f"{msg}: max error {err:.3g}, max value {scale:.3g}",
    )


def _funcodec_disc():
    disc_mod = funcodec("funcodec.models.discriminator.encodec_disc")
    torch.manual_seed(0)
    # the recipe's discriminator_conf: encodec_multi_scale_stft_discriminator, filters 32
    return disc_mod.MultiScaleSTFTDiscriminator(filters=32).double()


def test_discriminator_layout_matches_funcodec():
    ref = _funcodec_disc()
    conf = load_train_config(CONF)
    ours = DISCRIMINATORS.build(conf.discriminator, conf.discriminator_conf)
    pairs = conv_pairs(ref, ours)  # same convolutions, same shapes, in order
    assert len(pairs) == 3 * 6
    for i, (a, b) in enumerate(pairs):
        for attr in ("stride", "padding", "dilation", "groups"):
            assert getattr(a, attr) == getattr(b, attr), (i, attr)
    kinds = [(norm_kind(a), norm_kind(b)) for a, b in pairs]
    # FunCodec weight-normalises every conv but the first of each scale
    # (encodec_disc.py:70-72: NormConv2d without norm=)
    assert [k for k, _ in kinds] == (["none"] + ["weight"] * 5) * 3
    assert [k for _, k in kinds] == ([ms_stft_first_conv_kind()] + ["weight"] * 5) * 3


def test_discriminator_forward_backward_equals_funcodec():
    ref = _funcodec_disc()
    conf = load_train_config(CONF)
    ours = DISCRIMINATORS.build(conf.discriminator, conf.discriminator_conf).double()
    float64_stft_windows(ours)  # stored float32-rounded: recomputed for a float64 comparison
    copy_convs(ref, ours)
    x, y = speech(0.3), degraded(speech(0.3))
    y_ref, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    loss = LOSSES.build("funcodec", {"sample_rate": 16000})
    with EffectiveWeightGrads(ref) as g_ref, EffectiveWeightGrads(ours) as g_ours:
        real_t, fake_t = ref(x), ref(y_ref)  # [(pooled logits, fmaps)] (encodec_disc.py:137-145)
        with g_ours.forward_context():
            real_o = ours(x)
        with g_ours.forward_context():
            fake_o = ours(y_ours)
        for (lr, fr), o in zip(real_t + fake_t, real_o + fake_o):
            for a, b in zip([*fr, lr], o):
                close(b, a)
        # D loss on the real and the (here not detached) fake, codec_freq.py:590-596
        d_ref = torch.stack(
            [F.relu(1 - r[0]).mean() + F.relu(1 + f[0]).mean() for r, f in zip(real_t, fake_t)]
        ).mean()
        d_ours, _ = loss.discriminator(real_o, fake_o)
        close(d_ours, d_ref)
        d_ref.backward()
        d_ours.backward()
    for i, (a, b) in enumerate(zip(g_ref.grads(), g_ours.grads())):
        close(b, a, f"conv {i} weight grad")
    for i, (a, b) in enumerate(conv_pairs(ref, ours)):
        close(b.bias.grad, a.bias.grad, f"conv {i} bias grad")
    close(y_ours.grad, y_ref.grad, "input grad")


# ----------------------------------------------------------------- (c) quantizer
def _funcodec_rvq(n_q: int, bins: int, dim: int, threshold: float, **kw):
    ddp = funcodec("funcodec.modules.quantization.ddp_core_vq")
    return ddp.DistributedResidualVectorQuantization(
        num_quantizers=n_q,
        dim=dim,
        codebook_size=bins,
        decay=0.99,
        kmeans_init=True,
        kmeans_iters=5,
        threshold_ema_dead_code=threshold,
        **kw,
    )


def _codectk_rvq(n_q: int, bins: int, dim: int, threshold: float):
    return ResidualVectorQuantizer(
        dimension=dim,
        n_codebooks=n_q,
        codebook_size=bins,
        decay=0.99,
        kmeans_init=True,
        kmeans_iters=5,
        threshold_ema_dead_code=threshold,
    )


def _latents(seed: int, shape=(2, 8, 60)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g)


def test_kmeans_init_equals_funcodec():
    ddp = funcodec("funcodec.modules.quantization.ddp_core_vq")
    samples = _latents(3).transpose(1, 2).reshape(-1, 8)
    torch.manual_seed(5)
    means_ref, bins_ref = ddp.kmeans(samples, 16, 5)
    torch.manual_seed(5)
    means, counts = codectk_kmeans(samples, 16, 5)
    torch.testing.assert_close(means, means_ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(counts.long(), bins_ref)


def test_rvq_training_forward_equals_funcodec():
    """First training forward: k-means on the batch, codes, quantized sum, commitment."""
    z = _latents(4)
    ref, ours = _funcodec_rvq(3, 16, 8, 0.0), _codectk_rvq(3, 16, 8, 0.0)
    ref.train(), ours.train()
    torch.manual_seed(7)
    q_ref, codes_ref, losses_ref, _ = ref(z.clone())
    torch.manual_seed(7)
    out = ours(z.clone())
    assert torch.equal(out.codes, codes_ref.transpose(0, 1))  # (K, B, F) -> (B, K, F)
    torch.testing.assert_close(out.z_q, q_ref, rtol=1e-6, atol=1e-6)
    # vq.py:101: penalty = mean over the K stages of each stage's MSE(q, r)
    torch.testing.assert_close(out.commitment_loss, losses_ref.mean(), rtol=1e-6, atol=0)


def _set_state(cb_ref, cb_ours, embed, cluster_size):
    """Both codebooks in one state: embed, cluster sizes, embed_avg = embed * size."""
    for buf, value in [("embed", embed), ("cluster_size", cluster_size)]:
        getattr(cb_ours, buf).copy_(value)
    cb_ours.embed_avg.copy_(embed * cluster_size[:, None])
    cb_ours.initialized.fill_(True)
    cb_ref.embed[0].copy_(embed)
    cb_ref.cluster_size[0].copy_(cluster_size)
    cb_ref.embed_avg[0].copy_(embed * cluster_size[:, None])
    cb_ref.inited.fill_(1.0)


@pytest.mark.parametrize("funcodec_threshold", [0.0, 2.0])
def test_ema_update_equals_funcodec(funcodec_threshold):
    """One EMA step from a common state. FunCodec replaces dead codes *before* its EMA
    update, which then overwrites the whole codebook with embed_avg / cluster_size
    (core_vq.py / ddp_core_vq.py ``EuclideanCodebook.forward``): its replacement never
    survives, so its threshold 2 trains as codectk's threshold 0 (no replacement)."""
    g = torch.Generator().manual_seed(8)
    embed = torch.randn(16, 8, generator=g)
    size = torch.rand(16, generator=g) * 4  # some below 2: dead by FunCodec's threshold
    assert (size < 2).any()
    ref = _funcodec_rvq(1, 16, 8, funcodec_threshold)
    ours = _codectk_rvq(1, 16, 8, 0.0)
    ref.train(), ours.train()
    with torch.no_grad():
        _set_state(ref, ours.layers[0].codebook, embed, size)
    z = _latents(9)
    torch.manual_seed(0)
    _, codes_ref, _, _ = ref(z)
    out = ours(z)
    assert torch.equal(out.codes[:, 0], codes_ref[0])
    cb = ours.layers[0].codebook
    torch.testing.assert_close(cb.cluster_size, ref.cluster_size[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(cb.embed_avg, ref.embed_avg[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cb.embed, ref.embed[0], rtol=1e-5, atol=1e-6)


def test_structured_dropout_commitment_equals_funcodec():
    """FunCodec drops stages >= K' (K' = random.choice(rand_num_quant)) and averages the
    commitment over all K stages, dropped ones 0 (ddp_core_vq.py:372-395, vq.py:101);
    FreqCodec with ``commitment_average: all`` reports the same value."""
    conf = freqcodec_tiny_conf(
        quantizer=dict(kmeans_iters=5, threshold_ema_dead_code=0.0), commitment_average="all"
    )
    codec = CODECS.build("freqcodec", conf).train()
    wav = speech(0.2).float()
    with torch.no_grad():
        z = codec.latent(wav)
    ref = _funcodec_rvq(4, 64, 32, 0.0, quantize_dropout=True, rand_num_quant=[1, 2, 4])
    ref.train()
    random.seed(0)
    choice = random.choice([1, 2, 4])
    random.seed(0)
    torch.manual_seed(11)
    q_ref, codes_ref, losses_ref, _ = ref(z.clone())
    torch.manual_seed(11)
    with torch.no_grad():
        out = codec(wav, n_quantizers=choice)
    assert choice == 2 and out.n_quantizers == 2
    assert (codes_ref[choice:] == -1).all()  # dropped stages
    assert torch.equal(out.codes, codes_ref[:choice].transpose(0, 1))
    torch.testing.assert_close(out.commitment_loss, losses_ref.mean(), rtol=1e-6, atol=0)


def test_freqcodec_rvq_training_steps_equal_funcodec():
    """Eight training steps of FreqCodec's configured RVQ (tiny sizes) against FunCodec's,
    K' drawn per step as FunCodec does: codes, z_q, commitment and every codebook buffer.
    Needs the RVQ options that reproduce the encodec-style EMA start and dead-code order
    (``ema_init``, ``dead_code`` of codectk's RVQ), which FreqCodec's preset must set."""
    import inspect

    if "ema_init" not in inspect.signature(ResidualVectorQuantizer).parameters:
        pytest.skip("codectk's RVQ has no ema_init / dead_code options on this tree")
    conf = freqcodec_tiny_conf(quantizer=dict(kmeans_iters=5, codebook_size=16))
    ours = CODECS.build("freqcodec", conf).quantizer.double().train()
    ref = _funcodec_rvq(4, 16, 32, 2.0, quantize_dropout=True, rand_num_quant=[1, 2, 4])
    ref = ref.double().train()
    for step in range(8):
        z = _latents(50 + step, (2, 32, 30)).double()
        random.seed(step)
        k = random.choice([1, 2, 4])
        random.seed(step)
        torch.manual_seed(100 + step)
        q_ref, codes_ref, losses_ref, _ = ref(z.clone())
        torch.manual_seed(100 + step)
        out = ours(z.clone(), k)
        assert torch.equal(out.codes, codes_ref[:k].transpose(0, 1)), step
        torch.testing.assert_close(out.z_q, q_ref, rtol=1e-12, atol=1e-12)
        # FunCodec adds the losses to a float32 zero (core_vq.py / ddp_core_vq.py)
        torch.testing.assert_close(out.commitment_loss * k / 4, losses_ref.mean().double(),
                                   rtol=1e-6, atol=0)  # fmt: skip
        for i, layer in enumerate(ours.layers):
            for name in ("embed", "embed_avg", "cluster_size"):
                got, want = getattr(layer.codebook, name), getattr(ref, name)[i]
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=f"{name} {i}")


# ------------------------------------------------------------------ generator
def _copy_norms_and_lstms(ref: torch.nn.Module, ours: torch.nn.Module) -> None:
    """GroupNorm affine parameters (set to random values on both) and LSTM weights."""
    for kind in (torch.nn.GroupNorm, torch.nn.LSTM):
        a = [m for m in ref.modules() if isinstance(m, kind)]
        b = [m for m in ours.modules() if isinstance(m, kind)]
        assert len(a) == len(b), kind
        with torch.no_grad():
            for x, y in zip(a, b):
                if kind is torch.nn.GroupNorm:
                    assert (x.num_groups, x.num_channels, x.eps) == (
                        y.num_groups,
                        y.num_channels,
                        y.eps,
                    )
                    x.weight.copy_(torch.rand_like(x.weight) + 0.5)
                    x.bias.copy_(0.1 * torch.randn_like(x.bias))
                y.load_state_dict(x.state_dict())


def test_seanet2d_encoder_and_decoder_equal_funcodec_on_copied_weights():
    """FunCodec's SEANetEncoder2d / SEANetDecoder2d with the recipe's settings (time group
    norm with one group, dilation base 1, 2-layer LSTM, 3 output channels), narrow (C = 4,
    D = 32), against FreqCodec's networks; the STFT front end is compared in the docs
    (codectk pads it "same", a deliberate change)."""
    enc_mod = funcodec("funcodec.models.encoder.seanet_encoder")
    dec_mod = funcodec("funcodec.models.decoder.seanet_decoder")
    recipe = dict(ratios=[(4, 1), (4, 1), (4, 2), (4, 1)], norm="time_group_norm",
                  norm_params={"num_groups": 1}, causal=False, dilation_base=1, n_filters=4)  # fmt: skip
    torch.manual_seed(0)
    ref_enc = enc_mod.SEANetEncoder2d(input_size=3, dimension=32, **recipe).double().eval()
    ref_dec = dec_mod.SEANetDecoder2d(input_size=32, channels=3, **recipe).double().eval()
    codec = CODECS.build("freqcodec", freqcodec_tiny_conf(encoder=dict(lstm=2))).double().eval()
    for ref, ours in [(ref_enc, codec.encoder), (ref_dec, codec.decoder)]:
        copy_convs(ref, ours)
        _copy_norms_and_lstms(ref, ours)
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 3, 257, 12, generator=g, dtype=torch.float64)  # (B, C, N, M)
    with torch.no_grad():
        z_ref = ref_enc(feats).permute(0, 2, 1)  # (B, F, D) -> (B, D, F)
        z = codec.encoder(feats)
        close(z, z_ref, "latent")
        close(codec.decoder(z_ref), ref_dec(z_ref.permute(0, 2, 1)), "decoder output")
