"""Latent diffusion for LaDiffCodec: the 1-D denoising U-Net, noise schedules, the DDPM
loss and the DDPM / DDIM samplers."""

from codectk.diffusion.gaussian import (
    GaussianDiffusion,
    ddim_timesteps,
    make_betas,
)
from codectk.diffusion.unet import UNet1D

__all__ = ["GaussianDiffusion", "UNet1D", "ddim_timesteps", "make_betas"]
