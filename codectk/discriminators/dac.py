"""DAC's discriminator: MPD + multi-band MRD on a peak-normalised input (``dac``).

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), NeurIPS 2023,
§3.3, and the authors' ``dac.model.discriminator.Discriminator``: HiFi-GAN's multi-period
discriminator (periods 2, 3, 5, 7, 11; codectk's ``mpd`` defaults are DAC's, except that
DAC's MPD pads a whole extra period when T is a multiple of p, so ``always_pad`` defaults
to true here) followed by the multi-band multi-resolution STFT discriminator (``mrd``,
windows 2048, 1024, 512).
Before both, the waveform's DC offset is removed and it is peak-normalised to 0.8::

    y = x - mean_t(x);  y = 0.8 * y / (max_t |y| + 1e-9)

(per example), so the discriminator judges shape, not level. ``discriminator: combined``
with ``{mpd: {}, mrd: {}}`` is the same without that normalisation.
"""

from __future__ import annotations

from torch import Tensor, nn

from codectk.discriminators import DISCRIMINATORS


def peak_normalize(wav: Tensor, peak: float = 0.8, eps: float = 1e-9) -> Tensor:
    """Remove the DC offset and scale each example to a peak of ``peak``.

    Args:
        wav (Tensor): (B, 1, T).
        peak (float): target maximum absolute value.
        eps (float): added to the peak before dividing.

    Returns:
        Tensor: (B, 1, T).
    """
    wav = wav - wav.mean(dim=-1, keepdim=True)
    return peak * wav / (wav.abs().amax(dim=-1, keepdim=True) + eps)


@DISCRIMINATORS.register("dac")
class DACDiscriminator(nn.Module):
    """MPD then MRD, as DAC (see module doc).

    Args:
        mpd (dict | None): ``mpd`` constructor arguments (None or {}: DAC's defaults;
            ``always_pad`` is true unless given).
        mrd (dict | None): ``mrd`` constructor arguments (None or {}: DAC's defaults).
        peak_normalize (bool): remove DC and peak-normalise the input (DAC does).

    Raises:
        ValueError: an invalid ``mpd`` or ``mrd`` configuration (unknown key, bad type).
    """

    def __init__(
        self, mpd: dict | None = None, mrd: dict | None = None, peak_normalize: bool = True
    ):
        super().__init__()
        self.mpd = DISCRIMINATORS.build("mpd", {"always_pad": True, **(mpd or {})})
        self.mrd = DISCRIMINATORS.build("mrd", mrd)
        self.peak_normalize = peak_normalize

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform.

        Args:
            wav (Tensor): waveform (B, 1, T).

        Returns:
            list[list[Tensor]]: the MPD's sub-discriminator outputs then the MRD's (each:
            feature maps, then logits).
        """
        if self.peak_normalize:
            wav = peak_normalize(wav)
        return self.mpd(wav) + self.mrd(wav)
