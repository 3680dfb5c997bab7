"""A discriminator made of several registered discriminators, outputs concatenated.

Configuration::

    discriminator: combined
    discriminator_conf:
      discriminators:
        msd: {scales: 3}
        stft: {n_fft: 1024, hop_length: 256}

is SoundStream's setup (§3.4: the wave-based MelGAN discriminator plus the STFT
discriminator); ``{mpd: {}, msd: {}}`` is HiFi-GAN's.
"""

from __future__ import annotations

from torch import Tensor, nn

from codectk.discriminators import DISCRIMINATORS


@DISCRIMINATORS.register("combined")
class CombinedDiscriminator(nn.Module):
    """Run several discriminators on the same waveform and concatenate their outputs.

    Args:
        discriminators (dict[str, dict | None]): registered discriminator name -> its
            constructor keyword arguments (``None`` or ``{}`` for the defaults). Order is
            kept: the output lists follow it.

    Raises:
        ValueError: an empty mapping, an unknown name (listing the valid ones) or an
            invalid sub-configuration (see :meth:`codectk.registry.Registry.build`).
    """

    def __init__(self, discriminators: dict[str, dict | None]):
        super().__init__()
        if not discriminators:
            choices = [n for n in DISCRIMINATORS.names() if n != "combined"]
            raise ValueError(f"discriminators is empty; name at least one of {choices}")
        self.discriminators = nn.ModuleDict(
            {name: DISCRIMINATORS.build(name, conf) for name, conf in discriminators.items()}
        )

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform with every member.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[list[Tensor]]: the members' sub-discriminator lists, concatenated in
            configuration order (each inner list: feature maps, then logits).
        """
        outs: list[list[Tensor]] = []
        for disc in self.discriminators.values():
            outs.extend(disc(wav))
        return outs
