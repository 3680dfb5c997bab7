"""Gaussian diffusion over latent sequences: noise schedules, the DDPM training loss, the
DDPM ancestral sampler and the DDIM sampler.

* Forward process (Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
  eq. 4): q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t}
  (1 - beta_s), t = 0 .. T-1.
* Schedules: ``cosine`` (Nichol & Dhariwal, "Improved DDPM", ICML 2021, eq. 17, s = 0.008,
  betas clipped at 0.999; the authors' default) and ``linear`` (Ho et al. §4, 1e-4 to
  0.02 for T = 1000, scaled by 1000 / T).
* Loss (Ho et al. eq. 14, "simple" loss): E_{t, eps} || target - f_theta(x_t, t, c) ||
  with target eps (``objective: eps``, the authors' choice, with an L1 norm), v =
  sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (``v``, Salimans & Ho, "Progressive
  Distillation", ICLR 2022, Appendix D) or x_0 (``x0``).
* DDPM ancestral sampling (Ho et al. Algorithm 2) through the posterior
  q(x_{t-1} | x_t, x_0) (eq. 6-7) with x_0 predicted, T network calls.
* DDIM sampling (Song, Meng, Ermon, "Denoising Diffusion Implicit Models", ICLR 2021,
  eq. 12) on ``num_steps`` steps spaced as the authors' sampler spaces them
  (``linspace(-1, T-1, num_steps + 1)`` truncated to ints); ``eta`` 0 is deterministic
  given x_T, so a seeded ``torch.Generator`` gives identical samples.

Frame counts that the denoiser cannot take (:attr:`UNet1D.frame_multiple`) are padded
(replicating the last frame of the condition) and trimmed back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codectk.errors import check_choice

SCHEDULES = ("cosine", "linear")
OBJECTIVES = ("eps", "v", "x0")
LOSS_TYPES = ("l1", "l2")


def cosine_betas(timesteps: int, s: float = 0.008) -> Tensor:
    """Cosine schedule (Nichol & Dhariwal 2021, eq. 17): (T,) float64 betas in [0, 0.999]."""
    steps = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    abar = torch.cos((steps + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    return torch.clip(1 - abar[1:] / abar[:-1], 0, 0.999)


def linear_betas(timesteps: int) -> Tensor:
    """Linear schedule (Ho et al. 2020 §4): (T,) float64 betas, 1e-4..0.02 at T = 1000."""
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def make_betas(schedule: str, timesteps: int) -> Tensor:
    """Betas (T,) of a named schedule.

    Raises:
        ValueError: an unknown schedule (naming the valid ones) or timesteps < 2.
    """
    if timesteps < 2:
        raise ValueError(f"timesteps must be >= 2, got {timesteps}")
    check_choice("beta schedule", schedule, SCHEDULES)
    return cosine_betas(timesteps) if schedule == "cosine" else linear_betas(timesteps)


def ddim_timesteps(timesteps: int, num_steps: int) -> list[tuple[int, int]]:
    """(t, t_next) pairs visited by a ``num_steps``-step DDIM sampler, t_next = -1 last.

    Raises:
        ValueError: ``num_steps`` outside 1..timesteps.
    """
    if not 1 <= num_steps <= timesteps:
        raise ValueError(f"num_steps {num_steps} must lie in 1..{timesteps}")
    times = torch.linspace(-1, timesteps - 1, steps=num_steps + 1).int().tolist()
    times = list(reversed(times))
    return list(zip(times[:-1], times[1:]))


def _gather(a: Tensor, t: Tensor) -> Tensor:
    return a.gather(-1, t)[:, None, None]  # (B,) -> (B, 1, 1)


class GaussianDiffusion(nn.Module):
    """DDPM training objective and samplers around a denoiser ``f(x_t, t, cond)``.

    Args:
        denoiser (nn.Module): maps x_t (B, D, F), t (B,) and a condition (B, D_c, F) to
            (B, D, F); its ``frame_multiple`` attribute (default 1) is the frame count
            granularity it needs.
        timesteps (int): T, diffusion steps of training (the authors': 1000).
        beta_schedule (str): "cosine" (the authors') or "linear".
        objective (str): network target, "eps" (the authors'), "v" or "x0".
        loss_type (str): "l1" (the authors') or "l2".
        clip_denoised (float | None): clamp predicted x_0 to [-c, c] while sampling
            (the authors clamp to [-1, 1] after dividing latents by a fixed 18); None:
            no clamping.

    Raises:
        ValueError: an unknown schedule, objective or loss type.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        timesteps: int = 1000,
        beta_schedule: str = "cosine",
        objective: str = "eps",
        loss_type: str = "l1",
        clip_denoised: float | None = None,
    ):
        super().__init__()
        check_choice("objective", objective, OBJECTIVES)
        check_choice("loss_type", loss_type, LOSS_TYPES)
        self.denoiser = denoiser
        self.timesteps, self.objective, self.loss_type = timesteps, objective, loss_type
        self.clip_denoised = clip_denoised
        betas = make_betas(beta_schedule, timesteps)
        abar = torch.cumprod(1.0 - betas, dim=0)
        abar_prev = F.pad(abar[:-1], (1, 0), value=1.0)
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        tables = {
            "betas": betas,
            "alphas_cumprod": abar,
            "sqrt_alphas_cumprod": abar.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - abar).sqrt(),
            "sqrt_recip_alphas_cumprod": (1.0 / abar).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / abar - 1).sqrt(),
            "posterior_log_variance": post_var.clamp(min=1e-20).log(),
            "posterior_mean_coef1": betas * abar_prev.sqrt() / (1.0 - abar),
            "posterior_mean_coef2": (1.0 - abar_prev) * (1.0 - betas).sqrt() / (1.0 - abar),
        }
        for name, value in tables.items():  # derived from the config: not saved
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def frame_multiple(self) -> int:
        return int(getattr(self.denoiser, "frame_multiple", 1))

    # ------------------------------------------------------------------ helpers
    def _pad(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor | None, int]:
        n = x.shape[-1]
        extra = -n % self.frame_multiple
        if extra:
            x = F.pad(x, (0, extra), mode="replicate")
            cond = None if cond is None else F.pad(cond, (0, extra), mode="replicate")
        return x, cond, n

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4); x0 (B, D, F), t (B,)."""
        return (
            _gather(self.sqrt_alphas_cumprod, t) * x0
            + _gather(self.sqrt_one_minus_alphas_cumprod, t) * noise
        )

    def _x0(self, x_t: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """x_0 implied by the denoiser's output ``out`` at x_t, each (B, D, F): "eps":
        sqrt(1 / abar_t) x_t - sqrt(1 / abar_t - 1) eps; "v": sqrt(abar_t) x_t -
        sqrt(1 - abar_t) v; "x0": ``out`` itself."""
        if self.objective == "eps":
            return (
                _gather(self.sqrt_recip_alphas_cumprod, t) * x_t
                - _gather(self.sqrt_recipm1_alphas_cumprod, t) * out
            )
        if self.objective == "v":
            return (
                _gather(self.sqrt_alphas_cumprod, t) * x_t
                - _gather(self.sqrt_one_minus_alphas_cumprod, t) * out
            )
        return out

    def predict(self, x_t: Tensor, t: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """Run the denoiser and convert its output to (eps, x_0), each (B, D, F).

        ``clip_denoised`` clamps x_0, and eps is re-derived from the clamped x_0.
        """
        out = self.denoiser(x_t, t, cond)
        x0 = self._x0(x_t, t, out)
        if self.objective == "eps" and self.clip_denoised is None:
            return out, x0
        if self.clip_denoised is not None:
            x0 = x0.clamp(-self.clip_denoised, self.clip_denoised)
        eps = (_gather(self.sqrt_recip_alphas_cumprod, t) * x_t - x0) / _gather(
            self.sqrt_recipm1_alphas_cumprod, t
        )
        return eps, x0

    # ----------------------------------------------------------------- training
    def loss(
        self,
        x0: Tensor,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """DDPM loss on clean latents at uniformly drawn steps.

        Args:
            x0 (Tensor): clean (scaled) latents (B, D, F).
            cond (Tensor | None): condition (B, D_c, F).
            generator (torch.Generator | None): draws t and the noise (None: global RNG).

        Returns:
            tuple[Tensor, Tensor]: the scalar loss (mean over batch, channels and the F
            real frames) and the one-step x_0 estimate (B, D, F), detached.
        """
        b = x0.shape[0]
        x0p, condp, n = self._pad(x0, cond)
        dev = x0.device
        t = torch.randint(0, self.timesteps, (b,), device=dev, generator=generator)
        noise = torch.randn(x0p.shape, device=dev, dtype=x0p.dtype, generator=generator)
        x_t = self.q_sample(x0p, t, noise)
        out = self.denoiser(x_t, t, condp)
        if self.objective == "eps":
            target = noise
        elif self.objective == "v":
            target = (
                _gather(self.sqrt_alphas_cumprod, t) * noise
                - _gather(self.sqrt_one_minus_alphas_cumprod, t) * x0p
            )
        else:
            target = x0p
        err = out[..., :n] - target[..., :n]
        loss = err.abs().mean() if self.loss_type == "l1" else err.pow(2).mean()
        with torch.no_grad():
            x0_hat = self._x0(x_t, t, out)
        return loss, x0_hat[..., :n].detach()

    # ----------------------------------------------------------------- sampling
    def _start(self, shape, cond, generator) -> tuple[Tensor, Tensor | None, int]:
        b, d, n = shape
        dev = self.betas.device
        extra = -n % self.frame_multiple
        x = torch.randn((b, d, n + extra), device=dev, generator=generator)
        if cond is not None and extra:
            cond = F.pad(cond, (0, extra), mode="replicate")
        return x, cond, n

    @torch.no_grad()
    def ddim_sample(
        self,
        shape: tuple[int, int, int],
        cond: Tensor | None = None,
        num_steps: int = 50,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """DDIM sampling (Song et al. 2021, eq. 12).

        Args:
            shape (tuple[int, int, int]): (B, D, F) of the latents to draw.
            cond (Tensor | None): condition (B, D_c, F).
            num_steps (int): network calls, 1..T.
            eta (float): 0 deterministic DDIM; 1 DDPM-like noise at each step.
            generator (torch.Generator | None): for x_T (and the noise when eta > 0).
            progress (callable | None): called with the step index after each step.

        Returns:
            Tensor: x_0 samples (B, D, F).

        Raises:
            ValueError: ``num_steps`` outside 1..T.
        """
        pairs = ddim_timesteps(self.timesteps, num_steps)
        x, cond, n = self._start(shape, cond, generator)
        b = x.shape[0]
        for i, (t, t_next) in enumerate(pairs):
            tt = torch.full((b,), t, device=x.device, dtype=torch.long)
            eps, x0 = self.predict(x, tt, cond)
            if t_next < 0:
                x = x0
            else:
                a, a_next = self.alphas_cumprod[t], self.alphas_cumprod[t_next]
                sigma = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
                c = (1 - a_next - sigma**2).clamp(min=0).sqrt()
                x = x0 * a_next.sqrt() + c * eps
                if eta > 0:
                    x = x + sigma * torch.randn(
                        x.shape, device=x.device, dtype=x.dtype, generator=generator
                    )
            if progress is not None:
                progress(i)
        return x[..., :n]

    @torch.no_grad()
    def ddpm_sample(
        self,
        shape: tuple[int, int, int],
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) with T network calls.

        Args:
            shape (tuple[int, int, int]): (B, D, F).
            cond (Tensor | None): condition (B, D_c, F).
            generator (torch.Generator | None): for x_T and every step's noise.

        Returns:
            Tensor: x_0 samples (B, D, F).
        """
        x, cond, n = self._start(shape, cond, generator)
        b = x.shape[0]
        for t in reversed(range(self.timesteps)):
            tt = torch.full((b,), t, device=x.device, dtype=torch.long)
            _, x0 = self.predict(x, tt, cond)
            mean = (
                _gather(self.posterior_mean_coef1, tt) * x0
                + _gather(self.posterior_mean_coef2, tt) * x
            )
            if t > 0:
                noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
                x = mean + (0.5 * _gather(self.posterior_log_variance, tt)).exp() * noise
            else:
                x = mean
        return x[..., :n]
