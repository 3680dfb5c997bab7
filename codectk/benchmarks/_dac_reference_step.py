"""The DAC authors' training step, for the parity test and the GPU benchmark's anchor row.

The step is not in the ``dac`` package (descript-audio-codec 1.0.0): it is ``train_loop``
in the authors' ``scripts/train.py`` (repository commit
c7cfc5d2647e26471dc394f95846a0830e7bec34, whose ``dac/`` files equal the package's).
:func:`reference_step` is written from reading it (lines cited there), with the
settings of ``conf/final/16khz.yml`` that the step reads; none of their code is copied.
It runs only where the authors' packages are installed (``tools/venv-compare``):
``dac`` and ``audiotools`` are imported when a state is built.

Used by ``test/parity/test_dac_step.py`` (tiny sizes, CPU, float32) and by
:mod:`codectk.benchmarks.train_gpu` (paper size, CUDA: the anchor row).
"""

from __future__ import annotations

from typing import Any

import torch

# conf/final/16khz.yml:63-69 (MelSpectrogramLoss.*)
MEL_CONF = dict(
    n_mels=[5, 10, 20, 40, 80, 160, 320],
    window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
    mel_fmin=[0, 0, 0, 0, 0, 0, 0],
    mel_fmax=[None] * 7,
    pow=1.0,
    clamp_eps=1.0e-5,
    mag_weight=0.0,
)
# conf/final/16khz.yml:41-46 (lambdas)
LAMBDAS = {
    "mel/loss": 15.0,
    "adv/feat_loss": 2.0,
    "adv/gen_loss": 1.0,
    "vq/commitment_loss": 0.25,
    "vq/codebook_loss": 1.0,
}
# conf/final/16khz.yml:2-12: the paper-size 16 kHz DAC
DAC_16K = dict(
    sample_rate=16000,
    encoder_dim=64,
    encoder_rates=[2, 4, 5, 8],
    decoder_dim=1536,
    decoder_rates=[8, 5, 4, 2],
    n_codebooks=12,
    codebook_size=1024,
    codebook_dim=8,
    quantizer_dropout=0.5,
)
# conf/final/16khz.yml:15-24 (Discriminator.*)
DISCRIMINATOR_16K = dict(
    sample_rate=16000,
    rates=[],
    periods=[2, 3, 5, 7, 11],
    fft_sizes=[2048, 1024, 512],
    bands=[[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]],
)


class ReferenceState:
    """The authors' training state (``train.py:103-121``), built as their ``load``
    (:149-186) builds it: ``DAC`` and ``Discriminator``, AdamW with lr 1e-4 and betas
    (0.8, 0.99) and torch's other defaults (weight decay 0.01; ``train.py:31``,
    ``16khz.yml:27-28``; ``use_zero`` only under DDP), ExponentialLR 0.999996 per step
    (``train.py:35-37``, ``16khz.yml:29``), the mel loss of ``16khz.yml:63-69`` and
    ``GANLoss`` (:185-186); with ``logged_losses`` also the STFT and waveform L1 losses
    that the step computes and logs with no weight (:183-184, ``16khz.yml:62``; the
    parity test leaves them out, the benchmark keeps them: they are part of the step's
    cost). Their script also turns on ``torch.backends.cudnn.benchmark`` (``train.py:27``,
    unless ``CUDNN_BENCHMARK=0``); the benchmark does so for this row.

    Args:
        generator (dict): ``dac.model.DAC`` arguments.
        discriminator (dict): ``dac.model.Discriminator`` arguments.
        device (str): where the state lives.
        logged_losses (bool): build the STFT and waveform losses too.
        seed (int): ``torch.manual_seed`` before the models are built.
    """

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        device: str = "cpu",
        logged_losses: bool = False,
        seed: int = 0,
    ):
        import dac

        torch.manual_seed(seed)
        self.sample_rate = generator["sample_rate"]
        self.generator = dac.model.DAC(**generator).to(device)
        self.discriminator = dac.model.Discriminator(**discriminator).to(device)
        self.optimizer_g = torch.optim.AdamW(
            self.generator.parameters(), lr=1e-4, betas=(0.8, 0.99)
        )
        self.optimizer_d = torch.optim.AdamW(
            self.discriminator.parameters(), lr=1e-4, betas=(0.8, 0.99)
        )
        self.scheduler_g = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_g, 0.999996)
        self.scheduler_d = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_d, 0.999996)
        self.mel_loss = dac.nn.loss.MelSpectrogramLoss(**MEL_CONF).to(device)
        self.gan_loss = dac.nn.loss.GANLoss(self.discriminator).to(device)
        self.stft_loss = self.waveform_loss = None
        if logged_losses:  # 16khz.yml:62: MultiScaleSTFTLoss.window_lengths
            self.stft_loss = dac.nn.loss.MultiScaleSTFTLoss(window_lengths=[2048, 512]).to(device)
            self.waveform_loss = dac.nn.loss.L1Loss().to(device)


def reference_step(state: ReferenceState, wav: torch.Tensor, keep_grads: bool = True) -> dict:
    """``scripts/train.py:225-280`` (``train_loop``) without AMP (``16khz.yml:31``:
    audiotools' ``Accelerator`` then scales, unscales and steps as plain torch), DDP or
    the data transform (the batch is already the signal).

    Args:
        state (ReferenceState): updated in place.
        wav (Tensor): the batch (B, 1, T) on the state's device.
        keep_grads (bool): copy every parameter's gradient at the two clipping calls.

    Returns:
        dict: the step's outputs (losses, gradient norms) plus, with ``keep_grads``,
        ``d_grads`` / ``g_grads`` (name -> gradient before clipping).
    """
    from audiotools import AudioSignal

    sr = state.sample_rate
    state.generator.train()  # :227-228
    state.discriminator.train()
    output = {}
    signal = AudioSignal(wav.clone(), sr)  # :233-235
    out = state.generator(signal.audio_data, signal.sample_rate)  # :238
    recons = AudioSignal(out["audio"], signal.sample_rate)  # :239
    commitment_loss = out["vq/commitment_loss"]  # :240-241
    codebook_loss = out["vq/codebook_loss"]
    output["adv/disc_loss"] = state.gan_loss.discriminator_loss(recons, signal)  # :244
    state.optimizer_d.zero_grad()  # :246
    output["adv/disc_loss"].backward()  # :247
    if keep_grads:
        output["d_grads"] = {n: p.grad.clone() for n, p in state.discriminator.named_parameters()}
    output["other/grad_norm_d"] = torch.nn.utils.clip_grad_norm_(  # :249-251
        state.discriminator.parameters(), 10.0
    )
    state.optimizer_d.step()  # :252
    state.scheduler_d.step()  # :253
    if state.stft_loss is not None:  # :256, :258 (logged, no weight in lambdas)
        output["stft/loss"] = state.stft_loss(recons, signal)
        output["waveform/loss"] = state.waveform_loss(recons, signal)
    output["mel/loss"] = state.mel_loss(recons, signal)  # :257
    output["adv/gen_loss"], output["adv/feat_loss"] = state.gan_loss.generator_loss(
        recons, signal
    )  # :259-262
    output["vq/commitment_loss"] = commitment_loss  # :263-264
    output["vq/codebook_loss"] = codebook_loss
    output["loss"] = sum([v * output[k] for k, v in LAMBDAS.items() if k in output])  # :265
    state.optimizer_g.zero_grad()  # :267
    output["loss"].backward()  # :268
    if keep_grads:
        output["g_grads"] = {n: p.grad.clone() for n, p in state.generator.named_parameters()}
    output["other/grad_norm"] = torch.nn.utils.clip_grad_norm_(  # :270-272
        state.generator.parameters(), 1e3
    )
    state.optimizer_g.step()  # :273
    state.scheduler_g.step()  # :274
    return output
