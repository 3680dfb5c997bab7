"""The objective of models that carry their own loss (``loss: model_only``), e.g.
LaDiffCodec's diffusion phase: the trainer adds ``CodecOutput.losses`` (the DDPM loss)
to the generator objective, and this contributes nothing else. There is no
discriminator in such a phase.
"""

from __future__ import annotations

from torch import Tensor, nn

from codectk.losses.codec_loss import LOSSES


@LOSSES.register("model_only")
class ModelOnlyLoss(nn.Module):
    """A generator objective of zero; the model's own ``CodecOutput.losses`` train it.

    Args:
        sample_rate (int): Hz (accepted for the registry's uniform call; unused).
    """

    def __init__(self, sample_rate: int):
        super().__init__()
        self.sample_rate = sample_rate

    def generator(
        self,
        wav: Tensor,
        wav_hat: Tensor,
        fake_outs=None,
        real_outs=None,
        commitment_loss: Tensor | None = None,
        codebook_loss: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Zero, with no terms.

        Args:
            wav (Tensor): reference (B, 1, T).
            wav_hat (Tensor): reconstruction (B, 1, T).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: a scalar 0 and an empty dict.

        Raises:
            ValueError: ``wav`` and ``wav_hat`` differ in shape, or discriminator outputs
                are given (this objective has no adversarial part).
        """
        if wav.shape != wav_hat.shape:
            raise ValueError(f"wav {tuple(wav.shape)} and wav_hat {tuple(wav_hat.shape)} differ")
        if fake_outs is not None:
            raise ValueError("loss model_only has no adversarial terms; set discriminator: null")
        return wav_hat.new_zeros(()), {}

    def discriminator(self, real_outs, fake_outs):
        """Not available.

        Raises:
            ValueError: always (no discriminator in a model_only phase).
        """
        raise ValueError("loss model_only has no discriminator objective; set discriminator: null")
