"""Tests of EnCodec's loss balancer and the ``encodec`` loss built on it."""

import math

import pytest
import torch

from codectk.features import MelSpectrogram, mel_filterbank
from codectk.losses import LOSSES
from codectk.losses.balancer import Balancer
from codectk.losses.encodec_loss import EnCodecFrequencyLoss
from test.single_thread import one_torch_thread  # noqa: F401


def _per_item_norm(g):
    return g.flatten(1).norm(dim=1).mean()


def _orthogonal_directions(shape):
    a = torch.zeros(shape)
    b = torch.zeros(shape)
    a[..., ::2] = 1.0
    b[..., 1::2] = 1.0
    return a, b


def test_contributions_follow_weights_when_gradient_norms_differ_100x():
    x = torch.zeros(4, 1, 64, requires_grad=True)
    a, b = _orthogonal_directions(x.shape)
    losses = {"small": (x * a).sum(), "big": 100.0 * (x * b).sum()}
    # plain sum: the big loss makes up 100/101 of the gradient norm
    grad = torch.autograd.grad(sum(losses.values()), x, retain_graph=True)[0]
    assert _per_item_norm(grad * b) / _per_item_norm(grad * a) == pytest.approx(100.0)
    balancer = Balancer({"small": 1.0, "big": 3.0}, total_norm=2.0)
    g, scales = balancer.gradient(losses, x)
    # each loss contributes R * lambda_i / sum(lambda) of the norm, whatever its scale
    assert _per_item_norm(g * a) == pytest.approx(2.0 * 1 / 4, rel=1e-6)
    assert _per_item_norm(g * b) == pytest.approx(2.0 * 3 / 4, rel=1e-6)
    per_item = float(a[0].norm())  # ||dl_small / dx|| per example
    assert scales["small"] == pytest.approx(0.5 / per_item, rel=1e-6)
    assert scales["big"] == pytest.approx(1.5 / (100 * per_item), rel=1e-6)


def test_ema_of_norms_is_bias_corrected():
    x = torch.zeros(2, 1, 8, requires_grad=True)
    balancer = Balancer({"l": 1.0}, ema_decay=0.5, per_batch_item=False)
    for k in (1.0, 3.0):
        balancer.gradient({"l": k * x.sum()}, x)
    norm1, norm2 = 1.0 * 4.0, 3.0 * 4.0  # ||k * ones(16)|| = 4k
    expected = (0.5 * norm1 + norm2) / (0.5 + 1.0)
    assert float(balancer.ema_norm[0] / balancer.ema_weight[0]) == pytest.approx(expected)
    g, scales = balancer.gradient({"l": 3.0 * x.sum()}, x)
    ema = (0.25 * norm1 + 0.5 * norm2 + norm2) / 1.75
    assert scales["l"] == pytest.approx(1.0 / ema)


def test_surrogate_backpropagates_exactly_the_balanced_gradient():
    torch.manual_seed(0)
    model = torch.nn.Conv1d(1, 1, 5, padding=2)
    inp = torch.randn(3, 1, 40)
    target = torch.randn(3, 1, 40)
    out = model(inp)
    losses = {"l1": (out - target).abs().mean(), "l2": 50 * (out - target).pow(2).mean()}
    balancer = Balancer({"l1": 1.0, "l2": 1.0})
    total = balancer.surrogate(losses, out)
    g_expected = torch.autograd.grad(
        (out * Balancer({"l1": 1.0, "l2": 1.0}).gradient(losses, out)[0]).sum(),
        model.weight,
        retain_graph=True,
    )[0]
    total.backward()
    torch.testing.assert_close(model.weight.grad, g_expected)
    # its value is the effective loss sum_i scale_i * l_i (finite, positive)
    assert math.isfinite(total.item()) and total.item() > 0


def test_balancer_errors():
    x = torch.zeros(2, 1, 4, requires_grad=True)
    balancer = Balancer({"a": 1.0})
    with pytest.raises(ValueError, match=r"losses \['b'\] must be a non-empty subset of \['a'\]"):
        balancer.gradient({"b": x.sum()}, x)
    y = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="loss 'a' does not depend on the balanced output"):
        balancer.gradient({"a": y.sum() + 0 * x.sum().detach()}, x)
    with pytest.raises(ValueError, match="non-negative and not all zero"):
        Balancer({"a": 0.0})


def test_frequency_loss_matches_definition():
    g = torch.Generator().manual_seed(0)
    x, y = 0.1 * torch.randn(2, 1, 2000, generator=g), 0.1 * torch.randn(2, 1, 2000, generator=g)
    loss = EnCodecFrequencyLoss(16000, scales=[6, 8], n_mels=16, alphas=[1.0, 2.0])
    assert float(loss(x, x)) == 0.0
    expected = 0.0
    for i, alpha in zip((6, 8), (1.0, 2.0)):
        mel = MelSpectrogram(16000, 2**i, 2**i // 4, n_mels=16, log=False)
        gain = torch.hann_window(2**i).pow(2).sum().rsqrt()
        d = (mel(x) - mel(y)) * gain
        expected += d.abs().mean() + alpha * d.pow(2).mean()
    torch.testing.assert_close(loss(x, y), expected / 2)


def _power_htk_mel(wav, n):
    """16-band power HTK mel from 64 Hz of full frames (window n, hop n / 4), by hand."""
    hop, window = n // 4, torch.hann_window(n)
    p = (n - hop) // 2
    wav = torch.nn.functional.pad(wav, (p, p), mode="reflect")
    frames = math.ceil((wav.shape[-1] - n) / hop) + 1  # every sample in a full frame
    wav = torch.nn.functional.pad(wav, (0, (frames - 1) * hop + n - wav.shape[-1]))
    spec = torch.stft(wav[:, 0], n, hop, window=window, center=False, return_complex=True)
    fbank = mel_filterbank(16000, n, 16, f_min=64.0, htk=True, norm=None)
    return fbank @ (spec.abs() / window.pow(2).sum().sqrt()) ** 2  # (B, 16, frames)


def test_frequency_loss_authors_variant_matches_definition():
    """The audiocraft options: full frames, power HTK mels from 64 Hz, MSE on log10 mels."""
    g = torch.Generator().manual_seed(2)
    x, y = 0.1 * torch.randn(2, 1, 1000, generator=g), 0.1 * torch.randn(2, 1, 1000, generator=g)
    loss = EnCodecFrequencyLoss(
        16000,
        scales=[6, 7],
        n_mels=16,
        f_min=64.0,
        power=2.0,
        mel_scale="htk",
        log_floor=1e-5,
        framing="full",
        reduction="weights",
        alphas=[1.0, 3.0],
    )
    expected = 0.0
    for i, alpha in zip((6, 7), (1.0, 3.0)):
        m_x, m_y = _power_htk_mel(x, 2**i), _power_htk_mel(y, 2**i)
        assert m_x.shape[-1] == math.ceil(1000 / (2**i // 4))
        d_log = torch.log10(1e-5 + m_x) - torch.log10(1e-5 + m_y)
        expected += (m_x - m_y).abs().mean() + alpha * d_log.pow(2).mean()
    torch.testing.assert_close(loss(x, y), expected / (2 + 1 + 3), rtol=1e-5, atol=0.0)
    assert float(loss(x, x)) == 0.0


def test_frequency_loss_option_errors():
    with pytest.raises(ValueError, match=r"mel_scale 'x' not supported; choose one of"):
        EnCodecFrequencyLoss(16000, mel_scale="x")
    with pytest.raises(ValueError, match=r"framing 'x' .*\['center', 'full'\]"):
        EnCodecFrequencyLoss(16000, framing="x")
    with pytest.raises(ValueError, match=r"reduction 'x' .*\['scales', 'weights'\]"):
        EnCodecFrequencyLoss(16000, reduction="x")
    with pytest.raises(ValueError, match="exclude each other"):
        EnCodecFrequencyLoss(16000, log=True, log_floor=1e-5)


def test_encodec_loss_balances_time_and_frequency_and_adds_commitment():
    loss = LOSSES.build("encodec", {"sample_rate": 16000, "freq": {"scales": [6, 7], "n_mels": 8}})
    g = torch.Generator().manual_seed(1)
    wav = 0.1 * torch.randn(2, 1, 1600, generator=g)
    wav_hat = (0.1 * torch.randn(2, 1, 1600, generator=g)).requires_grad_()
    commit_src = torch.tensor(2.0, requires_grad=True)
    total, parts = loss.generator(wav, wav_hat, commitment_loss=commit_src**2)
    assert set(parts) == {"time", "freq", "commit", "total"}
    # value: the plain weighted sum
    plain = 0.1 * parts["time"] + 1.0 * parts["freq"] + 1.0 * parts["commit"]
    assert total.item() == pytest.approx(float(plain), rel=1e-5)
    total.backward()
    g_t = torch.autograd.grad((wav - wav_hat).abs().mean(), wav_hat)[0]
    g_f = torch.autograd.grad(loss.freq_loss(wav, wav_hat), wav_hat)[0]
    expected = (0.1 / 1.1) * g_t / _per_item_norm(g_t) + (1.0 / 1.1) * g_f / _per_item_norm(g_f)
    torch.testing.assert_close(wav_hat.grad, expected, rtol=1e-4, atol=1e-8)
    assert float(commit_src.grad) == pytest.approx(4.0)  # lambda_w * d(c^2)/dc, unbalanced
    # without gradients (validation) the same value, no balancer update
    steps = loss.balancer.ema_weight.clone()
    with torch.no_grad():
        total2, _ = loss.generator(wav, wav_hat, commitment_loss=commit_src**2)
    assert float(total2) == pytest.approx(total.item(), rel=1e-5)
    assert torch.equal(loss.balancer.ema_weight, steps)


def test_encodec_loss_with_discriminator_outputs_and_config_errors():
    loss = LOSSES.build("encodec", {"sample_rate": 16000, "freq": {"scales": [6], "n_mels": 8}})
    wav = 0.1 * torch.randn(2, 1, 800)
    wav_hat = (0.1 * torch.randn(2, 1, 800)).requires_grad_()
    conv = torch.nn.Conv1d(1, 2, 9, stride=4)

    def disc(w):
        feat = torch.relu(conv(w))
        return [[feat, feat.mean(1, keepdim=True)]]

    total, parts = loss.generator(wav, wav_hat, disc(wav_hat), disc(wav))
    assert {"adv", "feat"} <= set(parts)
    total.backward()
    assert wav_hat.grad is not None and torch.isfinite(wav_hat.grad).all()
    d_total, d_parts = loss.discriminator(disc(wav), disc(wav_hat.detach()))
    assert d_total.item() == pytest.approx(float(d_parts["real"] + d_parts["fake"]))
    with pytest.raises(ValueError, match="at least one of the weights of"):
        zero = {"time": 0, "freq": 0, "adv": 0, "feat": 0}
        LOSSES.build("encodec", {"sample_rate": 16000, "weights": zero})
    with pytest.raises(ValueError, match="unknown key"):
        LOSSES.build("encodec", {"sample_rate": 16000, "lambda_mel": 1.0})
    with pytest.raises(ValueError, match=r"unknown term\(s\) \['mel'\]"):
        LOSSES.build("encodec", {"sample_rate": 16000, "weights": {"mel": 1.0}})
