"""Training losses: spectral reconstruction, adversarial, feature matching, and the
registered training objectives (``loss: codec_gan`` + ``loss_conf``)."""

from codectk.losses.adversarial import (
    discriminator_loss,
    discriminator_loss_terms,
    feature_matching_loss,
    generator_adversarial_loss,
)
from codectk.losses.codec_loss import LOSSES, CodecGANLoss
from codectk.losses.spectral import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
)

__all__ = [
    "LOSSES",
    "CodecGANLoss",
    "MultiResolutionSTFTLoss",
    "MultiScaleMelLoss",
    "discriminator_loss",
    "discriminator_loss_terms",
    "feature_matching_loss",
    "generator_adversarial_loss",
]
