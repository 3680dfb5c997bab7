"""ESC's code for the parity tests: imported by path from a read-only checkout
(``CODECTK_REF_ESC``, yzGuu830/efficient-speech-codec), and the key mappings of its
modules onto codectk's.

Its Swin blocks import ``trunc_normal_`` and ``to_2tuple`` from ``timm``
(``esc/modules/transformer/attention.py:6``), which the comparison environment does not
have: while ESC imports, a stand-in ``timm.models.layers`` provides torch's
``nn.init.trunc_normal_`` (the same truncated normal) and a 2-tuple helper; they only
initialise weights, which the tests then copy from one side to the other. Its training
scripts need ``accelerate``, ``wandb`` and ``transformers``, so the training step is
written in the tests from reading ``scripts/trainer_adv.py`` (cited there).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from test.parity import refs

SAMPLE_RATE = 16000
# ESC's structure at tiny widths: 6 scales / streams, 192 bins, (3, 2) patches, overlap 2
THEIRS = dict(
    in_dim=2,
    in_freq=192,
    h_dims=[4, 4, 4, 4, 4, 8],
    max_streams=6,
    win_len=20,
    hop_len=5,
    sr=SAMPLE_RATE,
    patch_size=[3, 2],
    swin_heads=[2, 2, 2, 2, 2],
    swin_depth=2,
    window_size=4,
    mlp_ratio=4.0,
    overlap=2,
    group_size=3,
    codebook_size=16,
    codebook_dims=[4, 4, 4, 4, 4, 4],
    l2norm=True,
)
OURS = dict(
    sample_rate=SAMPLE_RATE,
    n_freq=192,
    win_length=320,
    stft_hop_length=80,
    encoder=dict(
        patch_size=[3, 2],
        dims=[4, 4, 4, 4, 4, 8],
        num_heads=[2, 2, 2, 2, 2],
        depth=2,
        window_size=4,
        mlp_ratio=4.0,
    ),
    quantizer=dict(overlap=2, groups=3, codebook_size=16, codebook_dims=[4, 4, 4, 4, 4, 4]),
)
# a DAC discriminator small enough for CPU (its MPD widths are fixed, 32 to 1024): one
# period, 2 STFT resolutions, ESC's bands;
# the tests' clip lengths (880 and 1520 samples) are not multiples of 3, so that
# DAC's MPD padding of a whole period when T % p == 0 (codectk: none) does not arise
PERIODS, FFT_SIZES = [3], [512, 256]


def load(root: Path) -> types.SimpleNamespace:
    """Import ESC's modules: ``codecs`` (esc/models/codecs.py), ``disc``
    (esc/models/discriminator.py), ``gan`` and ``gen`` (esc/modules/loss/*), ``vq``
    (esc/modules/vq/quantization.py)."""
    for package in ("torchaudio", "einops", "audiotools"):  # what ESC's modules import
        pytest.importorskip(package, reason=f"ESC needs {package}: {refs.NOT_IN_COMPARE_ENV}")
    stubbed = []
    if "esc.models.codecs" not in sys.modules and importlib.util.find_spec("timm") is None:
        layers = types.ModuleType("timm.models.layers")
        layers.trunc_normal_ = torch.nn.init.trunc_normal_
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        for name, module in (
            ("timm", types.ModuleType("timm")),
            ("timm.models", types.ModuleType("timm.models")),
            ("timm.models.layers", layers),
        ):
            sys.modules[name] = module
            stubbed.append(name)
    try:
        return types.SimpleNamespace(
            codecs=refs.import_from(root, "esc.models.codecs"),
            disc=refs.import_from(root, "esc.models.discriminator"),
            gan=refs.import_from(root, "esc.modules.loss.gan_loss"),
            gen=refs.import_from(root, "esc.modules.loss.generator_loss"),
            vq=refs.import_from(root, "esc.modules.vq.quantization"),
        )
    finally:
        for name in stubbed:
            del sys.modules[name]


def discriminator_conf() -> dict:
    """codectk's ``dac`` discriminator equal to :func:`their_discriminator`."""
    return {
        "mpd": {
            "periods": PERIODS,
            "channels": [32, 128, 512, 1024, 1024],
            "strides": [3, 3, 3, 3, 1],
            "kernel_size": 5,
            "negative_slope": 0.1,
        },
        "mrd": {
            "fft_sizes": FFT_SIZES,
            "hop_factor": 0.25,
            "band_edges": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0],
            "channels": 32,
            "negative_slope": 0.1,
        },
        "peak_normalize": True,
    }


def their_discriminator(esc: types.SimpleNamespace) -> torch.nn.Module:
    """Their ``Discriminator`` as ``configs/9kbps_esc_base_adv.yaml:61-71`` (no MSD,
    ``rates: []``) at :data:`PERIODS` and :data:`FFT_SIZES`."""
    return esc.disc.Discriminator(
        rates=[],
        periods=PERIODS,
        fft_sizes=FFT_SIZES,
        sample_rate=SAMPLE_RATE,
        bands=[[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]],
    )


def discriminator_key(theirs: str) -> str:
    """Their key -> ours (before :func:`codectk.convert.canonical_key`)."""
    n = len(PERIODS)
    m = re.match(r"discriminators\.(\d+)\.(.*)$", theirs)
    i, rest = int(m.group(1)), m.group(2)
    rest = re.sub(r"^convs\.(\d+)\.0\.", r"layers.\1.", rest)
    rest = re.sub(r"^band_convs\.(\d+)\.(\d+)\.0\.", r"band_convs.\1.\2.", rest)
    if i < n:  # codectk's MPD names its logits conv "post", its MRD "conv_post" as DAC
        return f"mpd.discriminators.{i}." + re.sub(r"^conv_post\.", "post.", rest)
    return f"mrd.discriminators.{i - n}.{rest}"


def generator_key(theirs: str) -> str | None:
    """Their ``ESC`` key -> our ``esc`` key; None for their STFT windows and Swin
    relative-position index buffers (ours are computed)."""
    if theirs in ("ft.window", "ift.window") or theirs.endswith("relative_position_index"):
        return None
    key = theirs
    for pattern, repl in (
        (r"^quantizers\.(\d+)\.vqs\.(\d+)\.embedding\.", r"quantizer.streams.\1.codebooks.\2."),
        (r"^quantizers\.(\d+)\.", r"quantizer.streams.\1."),
        (r"^encoder\.patch_embed\.", "patch_embed."),
        (r"^encoder\.pre_nn\.swint_blocks\.", "pre_stage.blocks."),
        (r"^decoder\.post_nn\.swint_blocks\.", "post_stage.blocks."),
        (r"^decoder\.patch_deembed\.", "patch_deembed."),
        (r"^(encoder|decoder)\.blocks\.(\d+)\.swint_blocks\.", r"\1.\2.blocks."),
        (r"^(encoder|decoder)\.blocks\.(\d+)\.subsample\.", r"\1.\2.resample."),
        (r"\.mlp\.linear_1\.", ".mlp.0."),
        (r"\.mlp\.linear_2\.", ".mlp.2."),
    ):
        key = re.sub(pattern, repl, key)
    return key


def _load(ours: torch.nn.Module, theirs: torch.nn.Module, mapping) -> dict[str, str]:
    from codectk.convert import canonical_key

    wanted = ours.state_dict()
    by_canonical = {canonical_key(k): k for k in wanted}
    names, state = {}, {}
    for key, value in theirs.state_dict().items():
        mapped = mapping(key)
        if mapped is None:
            continue
        dest = by_canonical[canonical_key(mapped)]
        assert wanted[dest].shape == value.shape, (key, dest)
        state[dest], names[dest] = value.clone(), key
    assert set(state) == set(wanted), sorted(set(wanted) - set(state))
    ours.load_state_dict(state)
    return names


def load_generator_(ours: torch.nn.Module, theirs: torch.nn.Module) -> dict[str, str]:
    """Copy their ESC weights into ours; returns our key -> their key."""
    return _load(ours, theirs, generator_key)


def load_discriminator_(ours: torch.nn.Module, theirs: torch.nn.Module) -> dict[str, str]:
    """Copy their discriminator weights into ours; returns our key -> their key."""
    return _load(ours, theirs, discriminator_key)
