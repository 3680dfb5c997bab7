"""A discriminator made of several registered discriminators, outputs concatenated.

Configuration::

    discriminator: combined
    discriminator_conf:
      discriminators:
        msd: {scales: 3}
        stft: {n_fft: 1024, hop_length: 256}

is SoundStream's setup (§3.4: the wave-based MelGAN discriminator plus the STFT
discriminator); ``{mpd: {}, msd: {}}`` is HiFi-GAN's.

``logits_as_features: [mpd, hifigan_msd]`` makes those members' logits count as a feature
map too, as HiFi-GAN's own code does (its ``DiscriminatorP`` / ``DiscriminatorS`` append
the ``conv_post`` output to ``fmap``, so ``feature_loss`` matches it; AcademiCodec's
HiFi-Codec trains so, ``academicodec/models/hificodec/models.py:239,294``).
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
        logits_as_features (list[str] | None): members whose sub-discriminators' logits
            are also returned as their last feature map (each inner list then ends
            ``[..., logits, logits]``), so feature matching includes them.

    Raises:
        ValueError: an empty mapping, an unknown name (listing the valid ones), an
            invalid sub-configuration (see :meth:`codectk.registry.Registry.build`) or a
            ``logits_as_features`` entry that is not a member.
    """

    def __init__(
        self,
        discriminators: dict[str, dict | None],
        logits_as_features: list[str] | None = None,
    ):
        super().__init__()
        if not discriminators:
            choices = [n for n in DISCRIMINATORS.names() if n != "combined"]
            raise ValueError(f"discriminators is empty; name at least one of {choices}")
        self.logits_as_features = list(logits_as_features or [])
        unknown = [n for n in self.logits_as_features if n not in discriminators]
        if unknown:
            raise ValueError(
                f"logits_as_features {unknown} are not members; choose from {list(discriminators)}"
            )
        self.discriminators = nn.ModuleDict(
            {name: DISCRIMINATORS.build(name, conf) for name, conf in discriminators.items()}
        )

    def forward(self, wav: Tensor) -> list[list[Tensor]]:
        """Discriminate a waveform with every member.

        Args:
            wav (Tensor): waveform, shape (B, 1, T).

        Returns:
            list[list[Tensor]]: the members' sub-discriminator lists, concatenated in
            configuration order (each inner list: feature maps, then logits; for the
            ``logits_as_features`` members the logits appear as the last feature map too).
        """
        outs: list[list[Tensor]] = []
        for name, disc in self.discriminators.items():
            sub = disc(wav)
            if name in self.logits_as_features:
                sub = [[*o, o[-1]] for o in sub]
            outs.extend(sub)
        return outs
