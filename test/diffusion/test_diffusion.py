"""The latent-diffusion U-Net, noise schedules, DDPM loss and the DDPM / DDIM samplers."""

import pytest
import torch

from codectk.diffusion import GaussianDiffusion, UNet1D, ddim_timesteps, make_betas
from test.single_thread import one_torch_thread  # noqa: F401


class Oracle(torch.nn.Module):
    """A denoiser given as a function of (x_t, t, cond)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, t, cond):
        return self.fn(x, t, cond)


def _unet(**kw) -> UNet1D:
    torch.manual_seed(0)
    return UNet1D(**{"channels": 4, "cond_channels": 3, "dim": 16, "dim_mults": (1, 2), **kw})


def test_unet_shapes_and_errors():
    net = _unet(dim_mults=(1, 2, 2))
    assert net.frame_multiple == 4
    x, c = torch.randn(2, 4, 12), torch.randn(2, 3, 12)
    y = net(x, torch.tensor([0, 999]), c)
    assert y.shape == (2, 4, 12) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.randn(2, 4, 10), torch.tensor([1, 2]), torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="condition must be"):
        net(x, torch.tensor([1, 2]), torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="groups"):
        UNet1D(4, 0, dim=12)


def test_unet_uses_time_and_condition():
    net = _unet().eval()
    x, c = torch.randn(1, 4, 8), torch.randn(1, 3, 8)
    t = torch.tensor([10])
    base = net(x, t, c)
    assert not torch.allclose(base, net(x, torch.tensor([900]), c))
    assert not torch.allclose(base, net(x, t, torch.randn(1, 3, 8)))


def test_paper_size_unet_parameter_count():
    """The authors' README configuration (diff_dims 256, dim_mults 1 2 2 4 4, rep_dims 128,
    a 128-channel codec condition) measured from their code: 135,118,976."""
    with torch.device("meta"):
        net = UNet1D(channels=128, cond_channels=128, dim=256, dim_mults=(1, 2, 2, 4, 4))
    assert sum(p.numel() for p in net.parameters()) == 135_118_976


def test_schedules():
    cos, lin = make_betas("cosine", 1000), make_betas("linear", 1000)
    assert cos.shape == lin.shape == (1000,)
    assert float(cos.max()) == pytest.approx(0.999) and float(cos.min()) > 0
    assert float(lin[0]) == pytest.approx(1e-4) and float(lin[-1]) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="choose one of"):
        make_betas("sigmoid", 1000)
    pairs = ddim_timesteps(1000, 4)
    assert pairs[0][0] == 999 and pairs[-1][1] == -1 and len(pairs) == 4
    assert all(a > b for a, b in pairs)
    assert [t for t, _ in ddim_timesteps(10, 10)] == list(range(9, -1, -1))
    with pytest.raises(ValueError, match="num_steps"):
        ddim_timesteps(1000, 0)


def test_q_sample_and_one_step_estimates_are_consistent():
    """With the true noise as the network output, eps/v/x0 parametrisations recover x_0."""
    x0, noise = torch.randn(3, 4, 8), torch.randn(3, 4, 8)
    t = torch.tensor([0, 400, 999])
    for objective in ("eps", "v", "x0"):
        diff = GaussianDiffusion(_unet(), timesteps=1000, objective=objective)
        x_t = diff.q_sample(x0, t, noise)
        a = diff.alphas_cumprod[t][:, None, None]
        target = {"eps": noise, "v": a.sqrt() * noise - (1 - a).sqrt() * x0, "x0": x0}[objective]
        diff.denoiser = Oracle(lambda x, tt, c, target=target: target)
        eps, x0_hat = diff.predict(x_t, t, None)
        torch.testing.assert_close(x0_hat[:2], x0[:2], rtol=0, atol=1e-2)
        torch.testing.assert_close(eps[1:], noise[1:], rtol=0, atol=1e-2)


def test_loss_trains_and_pads_odd_lengths():
    torch.manual_seed(0)
    diff = GaussianDiffusion(_unet(dim_mults=(1, 2, 2)), timesteps=100)
    x0, c = torch.randn(2, 4, 10), torch.randn(2, 3, 10)  # 10 frames: padded to 12
    loss, x0_hat = diff.loss(x0, c)
    assert loss.dim() == 0 and x0_hat.shape == x0.shape
    opt = torch.optim.Adam(diff.parameters(), lr=1e-2)
    with torch.no_grad():
        first = float(diff.loss(x0, c, generator=torch.Generator().manual_seed(1))[0])
    for _ in range(15):
        opt.zero_grad()
        diff.loss(x0, c)[0].backward()
        opt.step()
    with torch.no_grad():
        assert float(diff.loss(x0, c, generator=torch.Generator().manual_seed(1))[0]) < first


def test_ddim_is_deterministic_with_a_seed_and_ddpm_runs():
    diff = GaussianDiffusion(_unet(), timesteps=50).eval()
    c = torch.randn(1, 3, 6)  # 6 frames: padded to 8 and trimmed back
    run = lambda seed, **kw: diff.ddim_sample(  # noqa: E731
        (1, 4, 6), c, num_steps=5, generator=torch.Generator().manual_seed(seed), **kw
    )
    a, b, other = run(0), run(0), run(1)
    assert a.shape == (1, 4, 6) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, other)
    s1, s2 = run(0, eta=1.0), run(0, eta=1.0)
    assert torch.equal(s1, s2) and not torch.allclose(s1, a)
    x = diff.ddpm_sample((1, 4, 6), c, generator=torch.Generator().manual_seed(0))
    y = diff.ddpm_sample((1, 4, 6), c, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 4, 6) and torch.equal(x, y)


def test_ddim_with_all_steps_and_no_eta_matches_the_analytic_oracle():
    """An oracle eps for a point mass at m: every sampler must land on m."""
    diff = GaussianDiffusion(_unet(), timesteps=100)
    m = torch.full((1, 4, 8), 0.7)

    def oracle(x, t, c):
        a = diff.alphas_cumprod[t][:, None, None]
        return (x - a.sqrt() * m) / (1 - a).sqrt()

    diff.denoiser = Oracle(oracle)
    for steps in (1, 7, 100):
        out = diff.ddim_sample((1, 4, 8), None, steps, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, m, rtol=1e-3, atol=1e-3)
    out = diff.ddpm_sample((1, 4, 8), None, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, m, rtol=1e-3, atol=1e-3)
