"""GAN discriminators, registered by name (``discriminator: msd`` + ``discriminator_conf``).

Every discriminator maps a waveform (B, 1, T) to ``list[list[Tensor]]``: one inner list
per sub-discriminator with its intermediate feature maps followed by its logits (last).

Registered: ``msd`` (MelGAN multi-scale), ``hifigan_msd`` (HiFi-GAN multi-scale), ``mpd``
(HiFi-GAN multi-period), ``stft`` (SoundStream STFT), ``ms_stft`` (EnCodec multi-scale
STFT), ``mrd`` (DAC multi-band multi-resolution STFT), ``dac`` (DAC: MPD + MRD on
peak-normalised input), ``combined`` (several of them).
"""

from codectk.registry import Registry

DISCRIMINATORS = Registry("discriminator")

# The modules register themselves on import; they need DISCRIMINATORS defined above.
from codectk.discriminators.combined import CombinedDiscriminator  # noqa: E402
from codectk.discriminators.dac import DACDiscriminator  # noqa: E402
from codectk.discriminators.mrd import MultiBandSTFTDiscriminator  # noqa: E402
from codectk.discriminators.stft import (  # noqa: E402
    MultiScaleSTFTDiscriminator,
    STFTDiscriminator,
)
from codectk.discriminators.waveform import (  # noqa: E402
    HiFiGANMultiScaleDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
)

__all__ = [
    "DISCRIMINATORS",
    "CombinedDiscriminator",
    "DACDiscriminator",
    "HiFiGANMultiScaleDiscriminator",
    "MultiBandSTFTDiscriminator",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "STFTDiscriminator",
]
