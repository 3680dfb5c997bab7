"""AudioDec's code for the parity tests: imported by path from a read-only checkout
(``CODECTK_REF_AUDIODEC``, facebookresearch/AudioDec, CC BY-NC 4.0: read and run, never
copied), and the key mappings of its modules onto codectk's.

Their top-level packages (``layers``, ``models``, ``losses``, ``trainer``) are registered
hollow, so no ``__init__`` runs (``losses/__init__.py`` would import every loss). Their
``trainer/trainerGAN.py`` imports ``tensorboardX`` only for its ``SummaryWriter`` logger;
when that package is missing a no-op writer stands in for it while the trainer modules
import, so that their ``Trainer._train_step`` runs as released.

The tiny configuration shared by the tests (:data:`TINY`) keeps the authors' structure:
hop 24 at 16 kHz, 3 codebooks of 16, a 2-scale MSD and a 2-period MPD whose channels
reach the cap at the last layer (their ``output_conv`` takes the next layer's channel
count, ``models/vocoder/modules/discriminator.py:89-98``).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

from test.parity import refs

SAMPLE_RATE = 16000
GENERATOR = dict(
    encode_channels=4,
    decode_channels=4,
    code_dim=8,
    codebook_num=3,
    codebook_size=16,
    enc_ratios=[2, 4, 8, 16],
    dec_ratios=[16, 8, 4, 2],
    enc_strides=[2, 3, 2, 2],
    dec_strides=[2, 2, 3, 2],
)
HOP = 24
MSD = dict(scales=2, channels=16, max_channels=64, max_groups=16, downsample_scales=[4, 4, 1])
MPD = dict(periods=[2, 3], channels=[4, 16, 64], strides=[3, 3, 1])
MEL = dict(fft_size=512, hop_size=HOP, n_mels=40)


def load(root: Path) -> types.SimpleNamespace:
    """Import the AudioDec modules the tests use.

    Returns:
        SimpleNamespace: ``audiodec`` (models/autoencoder/AudioDec.py), ``hifigan``
        (models/vocoder/HiFiGAN.py), ``adv``, ``feat``, ``mel`` (losses/*), ``trainer``
        (trainer/autoencoder.py), ``vocoder_trainer`` (trainer/vocoder.py).
    """
    for package in ("librosa", "torchaudio"):  # their mel loss and discriminator imports
        pytest.importorskip(package, reason=f"AudioDec needs {package}: {refs.NOT_IN_COMPARE_ENV}")
    refs.import_from(root, "layers.conv_layer")  # registers the hollow top package
    hollow = (
        "models.autoencoder",
        "models.autoencoder.modules",
        "models.vocoder",
        "models.vocoder.modules",
    )
    ns = types.SimpleNamespace(
        audiodec=refs.import_from(root, "models.autoencoder.AudioDec", hollow=hollow),
        hifigan=refs.import_from(root, "models.vocoder.HiFiGAN", hollow=hollow),
        adv=refs.import_from(root, "losses.adversarial_loss"),
        feat=refs.import_from(root, "losses.feat_match_loss"),
        mel=refs.import_from(root, "losses.mel_loss"),
    )
    stub = None
    if (
        "trainer.autoencoder" not in sys.modules
        and importlib.util.find_spec("tensorboardX") is None
    ):
        stub = types.ModuleType("tensorboardX")

        class SummaryWriter:  # their logger; nothing the tests read
            def __init__(self, *args, **kwargs):
                pass

            def add_scalar(self, *args, **kwargs):
                pass

        stub.SummaryWriter = SummaryWriter
        sys.modules["tensorboardX"] = stub
    try:
        ns.trainer = refs.import_from(root, "trainer.autoencoder")
        ns.vocoder_trainer = refs.import_from(root, "trainer.vocoder")
    finally:
        if stub is not None:
            del sys.modules["tensorboardX"]
    return ns


def their_generator(ad: types.SimpleNamespace) -> torch.nn.Module:
    """The authors' symAD ``Generator`` at :data:`GENERATOR` sizes (causal, no weight norm)."""
    g = dict(GENERATOR)
    for k in ("enc_ratios", "dec_ratios", "enc_strides", "dec_strides"):
        g[k] = tuple(g[k])
    return ad.audiodec.Generator(**g)


def their_discriminator(ad: types.SimpleNamespace) -> torch.nn.Module:
    """The authors' MSD + MPD (``models/vocoder/HiFiGAN.py:308-395``) with the
    ``discriminator_params`` layout of ``config/autoencoder/symAD_vctk_48000_hop300.yaml``."""
    return ad.hifigan.Discriminator(
        scales=MSD["scales"],
        scale_downsample_pooling="AvgPool1d",
        scale_downsample_pooling_params={"kernel_size": 4, "stride": 2, "padding": 2},
        scale_discriminator_params={
            "in_channels": 1,
            "out_channels": 1,
            "kernel_sizes": [15, 41, 5, 3],
            "channels": MSD["channels"],
            "max_downsample_channels": MSD["max_channels"],
            "max_groups": MSD["max_groups"],
            "bias": True,
            "downsample_scales": MSD["downsample_scales"],
            "nonlinear_activation": "LeakyReLU",
            "nonlinear_activation_params": {"negative_slope": 0.1},
        },
        follow_official_norm=True,
        periods=MPD["periods"],
        period_discriminator_params={
            "in_channels": 1,
            "out_channels": 1,
            "kernel_sizes": [5, 3],
            "channels": MPD["channels"][0],
            "downsample_scales": MPD["strides"],
            "max_downsample_channels": MPD["channels"][-1],
            "bias": True,
            "nonlinear_activation": "LeakyReLU",
            "nonlinear_activation_params": {"negative_slope": 0.1},
            "use_weight_norm": True,
            "use_spectral_norm": False,
        },
    )


def discriminator_conf() -> dict:
    """codectk's ``discriminator_conf`` equal to :func:`their_discriminator` (as in
    conf/symAD_vctk_48000_hop300.yaml, at the tiny sizes)."""
    return {
        "discriminators": {
            "hifigan_msd": {
                **MSD,
                "kernel_sizes": [15, 41, 5, 3],
                "negative_slope": 0.1,
                "spectral_norm_first_scale": False,
                "weight_norm": False,
            },
            "mpd": {**MPD, "kernel_size": 5, "negative_slope": 0.1, "post_kernel_size": 2},
        }
    }


def discriminator_key(theirs: str) -> str:
    """Their discriminator key -> codectk's ``combined`` key (weight-norm names unified by
    :func:`codectk.convert.canonical_key` afterwards).

    ``msd.discriminators.i.layers.j.0.conv.*`` (j < last) -> ``hifigan_msd...layers.j.*``,
    the last ``layers.J.conv.*`` -> ``post.*``; ``mpd.discriminators.i.convs.j.0.conv.*`` ->
    ``mpd...layers.j.*``, ``output_conv.conv.*`` -> ``post.*``.
    """
    import re

    key = re.sub(r"^msd\.", "discriminators.hifigan_msd.", theirs)
    key = re.sub(r"^mpd\.", "discriminators.mpd.", key)
    key = re.sub(r"\.convs\.(\d+)\.0\.conv\.", r".layers.\1.", key)
    key = re.sub(r"\.output_conv\.conv\.", ".post.", key)
    key = re.sub(r"\.layers\.(\d+)\.0\.conv\.", r".layers.\1.", key)
    n_msd = len(MSD["downsample_scales"]) + 2  # first, grouped..., last; then the logits
    return re.sub(rf"\.layers\.{n_msd}\.conv\.", ".post.", key)


def load_discriminator_(ours: torch.nn.Module, theirs: torch.nn.Module) -> dict[str, str]:
    """Copy their discriminator weights into ours; returns our key -> their key.

    Raises:
        AssertionError: a key without a counterpart or a shape mismatch.
    """
    from codectk.convert import canonical_key

    wanted = ours.state_dict()
    by_canonical = {canonical_key(k): k for k in wanted}
    names, state = {}, {}
    for key, value in theirs.state_dict().items():
        dest = by_canonical[canonical_key(discriminator_key(key))]
        assert wanted[dest].shape == value.shape, (key, dest)
        state[dest], names[dest] = value.clone(), key
    assert set(state) == set(wanted), sorted(set(wanted) - set(state))
    ours.load_state_dict(state)
    return names


def generator_key(theirs: str) -> str | None:
    """Their ``Generator`` key -> codectk's ``symad`` key; None for their streaming
    ``pad_buffer`` buffers. Codebook buffers map to ``quantizer.layers.i.codebook.*``
    (theirs are stored transposed, (D, V))."""
    import re

    if theirs.endswith("pad_buffer"):
        return None
    m = re.match(r"quantizer\.codebook\.layers\.(\d+)\.(embed|cluster_size|embed_avg)$", theirs)
    if m:
        return f"quantizer.layers.{m.group(1)}.codebook.{m.group(2)}"
    # their causal transposed conv's ``deconv`` is codectk's ConvTranspose1d ``convtr``
    return theirs.replace(".deconv.", ".convtr.")


def load_generator_(ours: torch.nn.Module, theirs: torch.nn.Module) -> dict[str, str]:
    """Copy their generator weights and EMA codebooks into our ``symad``; returns our key
    -> their key (for parameters and buffers).

    Raises:
        AssertionError: a key without a counterpart or a shape mismatch.
    """
    wanted = ours.state_dict()
    names, state = {}, {}
    for key, value in theirs.state_dict().items():
        dest = generator_key(key)
        if dest is None:
            continue
        if dest.endswith(("codebook.embed", "codebook.embed_avg")):
            value = value.t()  # (D, V) -> (V, D)
        assert wanted[dest].shape == value.shape, (key, dest)
        state[dest], names[dest] = value.clone().contiguous(), key
    for key in wanted:
        if key.endswith("codebook.initialized"):
            state[key] = torch.tensor(True)  # random init: nothing left to initialise
    assert set(state) == set(wanted), sorted(set(wanted) - set(state))
    ours.load_state_dict(state)
    return names


VOCODER = dict(channels=64, upsample_scales=[2, 2, 3, 2], kernel=5, dilations=[1, 3], groups=3)


def their_vocoder(ad: types.SimpleNamespace, stats: Path) -> torch.nn.Module:
    """The authors' causal HiFi-GAN vocoder (``models/vocoder/HiFiGAN.py:28-205``) at
    AD v1's layout (multi-group block, 3 groups) and tiny widths; upsampling kernels
    2 x scale as their configs; ``stats`` an AudioDec ``.npy`` (2, D)."""
    v = VOCODER
    return ad.hifigan.Generator(
        in_channels=GENERATOR["code_dim"],
        out_channels=1,
        channels=v["channels"],
        kernel_size=7,
        upsample_scales=v["upsample_scales"],
        upsample_kernel_sizes=[2 * s for s in v["upsample_scales"]],
        resblock_kernel_sizes=[v["kernel"]],
        resblock_dilations=[v["dilations"]],
        groups=v["groups"],
        bias=True,
        use_additional_convs=True,
        nonlinear_activation="LeakyReLU",
        nonlinear_activation_params={"negative_slope": 0.1},
        use_weight_norm=True,
        stats=str(stats),
    )


def _analysis_conf() -> dict:
    """codectk's encoder and quantizer sections (and the latent size) equal to their
    analyzer at :data:`GENERATOR` sizes: their ``encode_channels``, ``enc_ratios``,
    ``enc_strides`` -> ``encoder``; ``codebook_num``, ``codebook_size`` and the EMA
    codebook settings of their ``vq_module`` -> ``quantizer``."""
    g = GENERATOR
    return {
        "sample_rate": SAMPLE_RATE,
        "code_dim": g["code_dim"],
        "encoder": {
            "channels": g["encode_channels"],
            "channel_ratios": g["enc_ratios"],
            "strides": g["enc_strides"],
        },
        "quantizer": {
            "n_codebooks": g["codebook_num"],
            "codebook_size": g["codebook_size"],
            "decay": 0.8,
            "kmeans_init": False,
            "threshold_ema_dead_code": 0.0,
        },
    }


def symad_codec_conf() -> dict:
    """codectk's ``symad`` codec_conf equal to their ``Generator`` at :data:`GENERATOR`
    sizes (``decode_channels``, ``dec_ratios``, ``dec_strides`` -> ``decoder``)."""
    g = GENERATOR
    return {
        **_analysis_conf(),
        "decoder": {
            "channels": g["decode_channels"],
            "channel_ratios": g["dec_ratios"],
            "strides": g["dec_strides"],
        },
    }


def vocoder_codec_conf() -> dict:
    """codectk's ``audiodec`` codec_conf equal to their analyzer + :func:`their_vocoder`."""
    v = VOCODER
    return {
        **_analysis_conf(),
        "decoder": {
            "channels": v["channels"],
            "kernel_size": 7,
            "upsample_scales": v["upsample_scales"],
            "resblock_kernel_sizes": [v["kernel"]],
            "resblock_dilations": [v["dilations"]],
            "groups": v["groups"],
        },
    }


def load_vocoder_(ours: torch.nn.Module, analyzer: torch.nn.Module, gen: torch.nn.Module):
    """Copy their analyzer (encoder, projector, codebooks) and vocoder (weights and code
    statistics) into our ``audiodec`` codec; returns our key -> their key for the
    vocoder's parameters (``decoder.*``).

    Raises:
        AssertionError: a key without a counterpart or a shape mismatch.
    """
    import re

    from codectk.convert import canonical_key

    wanted = ours.state_dict()
    by_canonical = {canonical_key(k): k for k in wanted}
    state, names = {}, {}
    for key, value in analyzer.state_dict().items():
        dest = generator_key(key)
        if dest is None or dest.startswith("decoder."):
            continue
        if dest.endswith(("codebook.embed", "codebook.embed_avg")):
            value = value.t()  # (D, V) -> (V, D)
        state[dest] = value.clone().contiguous()
    for key, value in gen.state_dict().items():
        if key.endswith("pad_buffer"):
            continue
        if key in ("mean", "scale"):
            state[f"code_{key}"] = value.clone()
            continue
        mapped = "decoder." + re.sub(r"^blocks\.(\d+)\.convs", r"blocks.\1.block.convs", key)
        mapped = mapped.replace(".deconv.", ".convtr.")
        dest = by_canonical[canonical_key(mapped)]
        assert wanted[dest].shape == value.shape, (key, dest)
        state[dest], names[dest] = value.clone(), key
    for key in wanted:
        if key.endswith("codebook.initialized"):
            state[key] = torch.tensor(True)
    state["stats_loaded"] = torch.tensor(True)
    assert set(state) == set(wanted), sorted(set(wanted) ^ set(state))
    ours.load_state_dict(state)
    return names


# The loss switches and weights of their symAD and vocoder configs (config/autoencoder/
# symAD_*.yaml, config/vocoder/AudioDec_v1_*.yaml) that both full-step tests use.
LOSS_CONFIG = {
    "use_mel_loss": True,
    "lambda_mel_loss": 45.0,
    "use_stft_loss": False,
    "use_shape_loss": False,
    "use_feat_match_loss": True,
    "lambda_feat_match": 2.0,
    "lambda_adv": 1.0,
}


def their_criteria(ad) -> dict:
    """Their criteria as ``codecTrain.py`` builds them (:191-213) at the tiny mel sizes."""
    mel = MEL
    return {
        "gen_adv": ad.adv.GeneratorAdversarialLoss(average_by_discriminators=False),
        "dis_adv": ad.adv.DiscriminatorAdversarialLoss(average_by_discriminators=False),
        "feat_match": ad.feat.FeatureMatchLoss(
            average_by_discriminators=False, average_by_layers=False, include_final_outputs=False
        ),
        "mel": ad.mel.MultiMelSpectrogramLoss(
            fs=SAMPLE_RATE,
            fft_sizes=[mel["fft_size"]],
            hop_sizes=[mel["hop_size"]],
            win_lengths=[mel["fft_size"]],
            window="hann_window",
            num_mels=mel["n_mels"],
            fmin=0,
            fmax=SAMPLE_RATE // 2,
            log_base=None,
        ),
    }
