"""Training losses: spectral reconstruction, adversarial, feature matching, and the
registered training objectives (``loss: codec_gan``, ``encodec``, ``dac``, ``funcodec``, ... + ``loss_conf``)."""

from codectk.losses.adversarial import (
    discriminator_loss,
    discriminator_loss_terms,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codectk.losses.balancer import Balancer
from codectk.losses.codec_loss import CodecGANLoss
from codectk.losses.dac_loss import DACLoss
from codectk.losses.diffusion_loss import ModelOnlyLoss
from codectk.losses.encodec_loss import EnCodecFrequencyLoss, EnCodecLoss
from codectk.losses.esc_loss import ESCLoss
from codectk.losses.funcodec_loss import FunCodecLoss
from codectk.losses.hificodec_loss import HiFiCodecLoss
from codectk.losses.ladiffcodec_loss import LaDiffCodecAELoss
from codectk.losses.objective import LOSSES, GANObjective
from codectk.losses.spectral import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
)

__all__ = [
    "LOSSES",
    "Balancer",
    "CodecGANLoss",
    "DACLoss",
    "EnCodecFrequencyLoss",
    "EnCodecLoss",
    "ESCLoss",
    "FunCodecLoss",
    "GANObjective",
    "HiFiCodecLoss",
    "LaDiffCodecAELoss",
    "MultiResolutionSTFTLoss",
    "ModelOnlyLoss",
    "MultiScaleMelLoss",
    "discriminator_loss",
    "discriminator_loss_terms",
    "feature_matching_loss",
    "generator_adversarial_loss",
]
