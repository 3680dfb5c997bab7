"""ESC rung (c): training forwards of its cross-scale product-VQ quantizer, alone and
inside the whole generator, against codectk's with the weights copied.

* ``ProductVectorQuantize`` (``esc/modules/vq/quantization.py:5-75`` and ``codebook.py:
  57-75``: L2-normalised nearest codeword, straight-through estimator, commitment and
  codebook MSE per example averaged over the 3 groups; ``freeze_vq`` keeps the
  projections and skips the codewords) against ``ProductVectorQuantizer``: z_q, codes,
  losses and every gradient;
* the ESC generator (``esc/models/codecs.py:44-60``, ``csrvq.py:23-129``) in training
  mode with 6, 2 and 1 transmitted streams and in pre-training (``freeze_codebook``):
  the reconstructed waveform, codes of the transmitted streams, commitment, codebook and
  complex-STFT losses (``generator_loss.py:8-31``), and every parameter gradient of the
  waveform and VQ losses. Their training forward also quantizes the streams it does not transmit and
  multiplies their outputs and losses by 0 (``csrvq.py:43-45``); codectk skips them: the
  same values and gradients, only their codes are not computed.

Opt-in (``CODECTK_REF_ESC``, see test/parity/refs.py).
"""

from __future__ import annotations

import pytest
import torch

from codectk.models.esc import ESC
from codectk.quantization.csrvq import ProductVectorQuantizer
from test.parity import esc_ref, refs
from test.parity.test_audiodec_losses import _speech
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def esc():
    return esc_ref.load(refs.checkout("CODECTK_REF_ESC"))


@pytest.mark.parametrize("freeze", [False, True], ids=["quantize", "pretraining"])
def test_product_vq_training_forward(esc, freeze):
    b, h, w, c = 2, 4, 6, 5
    torch.manual_seed(0)
    theirs = esc.vq.ProductVectorQuantize(
        in_dim=c, in_freq=h, overlap=2, num_vqs=3, codebook_dim=4, codebook_size=16, l2norm=True
    ).train()
    ours = ProductVectorQuantizer(c, h, 2, 3, 16, 4).train()
    state = {
        k.replace("vqs.", "codebooks.").replace(".embedding", ""): v
        for k, v in theirs.state_dict().items()
    }
    ours.load_state_dict(state)
    x = torch.randn(b, h, w, c, requires_grad=True)
    out_t = theirs(x.reshape(b, h * w, c), freeze)  # their layout "b (h w) c"
    out_o = ours(x, bypass=freeze)
    torch.testing.assert_close(out_o.z_q.reshape(b, h * w, c), out_t["z_q"], rtol=1e-6, atol=1e-7)
    assert torch.equal(out_o.codes, out_t["codes"])
    torch.testing.assert_close(out_o.commitment_loss, out_t["cm_loss"], rtol=1e-6, atol=0)
    torch.testing.assert_close(out_o.codebook_loss, out_t["cb_loss"], rtol=1e-6, atol=0)
    r = torch.randn(b, h * w, c)
    params = [x, *theirs.parameters()]
    t_loss = (out_t["z_q"] * r).sum() + out_t["cm_loss"].sum() + out_t["cb_loss"].sum()
    t_grads = torch.autograd.grad(t_loss, params, allow_unused=True)
    o_loss = (out_o.z_q.reshape(b, h * w, c) * r).sum() + out_o.commitment_loss.sum()
    o_loss = o_loss + out_o.codebook_loss.sum()
    o_grads = torch.autograd.grad(o_loss, [x, *ours.parameters()], allow_unused=True)
    names = ["x", *(k for k, _ in theirs.named_parameters())]
    for name, o, t in zip(names, o_grads, t_grads):
        if t is None or not t.any():
            assert o is None or not o.any(), name  # pre-training: codebooks get nothing
            continue
        torch.testing.assert_close(o, t, rtol=1e-5, atol=1e-7, msg=name)


def _models(esc):
    torch.manual_seed(0)
    theirs = esc.codecs.ESC(**esc_ref.THEIRS).train()
    ours = ESC(**esc_ref.OURS).train()
    names = esc_ref.load_generator_(ours, theirs)
    return theirs, ours, names


@pytest.mark.parametrize(
    "streams,freeze",
    [(6, False), (2, False), (1, False), (6, True)],
    ids=["6_streams", "2_streams", "1_stream", "pretraining"],
)
def test_generator_training_forward(esc, streams, freeze):
    theirs, ours, names = _models(esc)
    wav = _speech(5 * 320 - 80, esc_ref.SAMPLE_RATE)  # their clips are 320 F - 80 samples
    t = theirs(x=wav[:, 0], x_feat=None, num_streams=streams, freeze_codebook=freeze)
    ours.quantizer_bypass = freeze  # on_train_step(step <= pretrain_steps)
    o = ours(wav, n_quantizers=3 * streams)
    assert o.extras["quantizer_bypass"] == freeze
    torch.testing.assert_close(o.wav[:, 0], t["recon_audio"], rtol=1e-4, atol=1e-5)
    t_stft = esc.gen.ComplexSTFTLoss(power_law=True)(t["raw_feat"], t["recon_feat"]).mean()
    torch.testing.assert_close(o.losses["stft"], t_stft, rtol=1e-4, atol=0)
    torch.testing.assert_close(o.commitment_loss, t["cm_loss"].mean(), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(o.codebook_loss, t["cb_loss"].mean(), rtol=1e-4, atol=1e-7)
    if not freeze:  # theirs: all 6 streams' codes in training; ours: the transmitted ones
        their_codes = t["codes"][:, :streams].flatten(1, 2)  # (B, S, 3, F) -> (B, 3 S, F)
        assert torch.equal(o.codes, their_codes)
    # every parameter gradient of a loss through the waveform and the VQ losses (not the
    # complex-STFT loss: its power law, d/dx (|x| + 1e-10)^0.3, turns float rounding of
    # spectrum bins near 0 into gradients of any size, on either side)
    torch.manual_seed(1)
    r = torch.randn_like(t["recon_audio"])
    t_loss = (t["recon_audio"] * r).sum() + t["cm_loss"].sum() + t["cb_loss"].sum()
    o_loss = (o.wav[:, 0] * r).sum() + 2 * o.commitment_loss + 2 * o.codebook_loss
    t_loss.backward()
    o_loss.backward()
    their = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        g_t = their[names[key]].grad
        if g_t is None or not g_t.any():
            assert p.grad is None or not p.grad.any(), key
            continue
        scale = float(g_t.abs().max())
        torch.testing.assert_close(
            p.grad, g_t, rtol=1e-3, atol=1e-4 * scale, msg=lambda m, k=key: f"{k}: {m}"
        )


def test_adversarial_config_is_theirs(esc):
    """conf/esc_16k_base_adv.yaml builds the generator of their
    configs/9kbps_esc_base_adv.yaml (lookup dimension 8 in every stream) and weights its
    losses as that file's ``loss`` block (:41-47)."""
    import yaml

    from codectk.config import load_train_config
    from codectk.models import CODECS
    from test.conftest import REPO

    root = refs.checkout("CODECTK_REF_ESC")
    theirs = yaml.safe_load((root / "configs/9kbps_esc_base_adv.yaml").read_text())
    ours = load_train_config(REPO / "conf/esc_16k_base_adv.yaml")
    model = {k: v for k, v in theirs["model"].items() if k != "backbone"}
    t = esc.codecs.ESC(**model, backbone=theirs["model"]["backbone"])
    o = CODECS.build(ours.codec, ours.codec_conf)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(o) == n(t)
    assert ours.codec_conf["quantizer"]["codebook_dims"] == theirs["model"]["codebook_dims"]
    w = theirs["loss"]
    assert ours.codec_conf["stft_loss_weight"] == w["stft_weight"]
    weights = ours.loss_conf["weights"]
    assert (weights["mel"], weights["commit"]) == (w["mel_weight"], w["cm_weight"])
    assert (weights["codebook"], weights["adv"]) == (w["cb_weight"], w["gen_weight"])
    assert weights["feat"] == w["feat_weight"]
    assert ours.discriminator_conf["mpd"]["periods"] == theirs["discriminator"]["periods"]
    assert ours.discriminator_conf["mrd"]["fft_sizes"] == theirs["discriminator"]["fft_sizes"]
    assert ours.gan_step_order == "g_first"
