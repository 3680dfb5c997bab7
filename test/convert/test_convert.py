"""Tests of codectk.convert: the authors' key layouts map onto codectk's models.

The released-style state dicts are built here from the authors' naming rules (their
``SConv1d -> NormConv1d -> Conv1d`` chain, ``torch.nn.utils.weight_norm``'s g / v names,
their quantizer containers); ``test_parity.py`` checks the same against the authors'
packages where they are installed.
"""

import re

import pytest
import torch

import codectk
from codectk.bin import convert_checkpoint as cli
from codectk.config import build_train_config, load_yaml
from codectk.convert import ConversionError, canonical_key, convert_checkpoint
from codectk.registry import merge_sections
from test.conftest import REPO
from test.single_thread import one_torch_thread  # noqa: F401

CONF = REPO / "egs/mini_librispeech/codec1/conf"


def _config(name, **codec_conf):
    conf = load_yaml(CONF / f"{name}_16k_tiny.yaml")
    conf["codec_conf"] = merge_sections(conf["codec_conf"], codec_conf)
    return build_train_config(conf)


def _weight_norm_names(key):
    key = key.replace("parametrizations.weight.original0", "weight_g")
    return key.replace("parametrizations.weight.original1", "weight_v")


def encodec_style(state):
    """codectk EnCodec keys -> the ``encodec`` package's keys."""
    out = {}
    for k, v in state.items():
        k = _weight_norm_names(k)
        k = re.sub(r"\.conv\.(weight_g|weight_v|bias|weight)$", r".conv.conv.\1", k)
        k = re.sub(r"\.convtr\.(weight_g|weight_v|bias|weight)$", r".convtr.convtr.\1", k)
        m = re.match(r"quantizer\.layers\.(\d+)\.codebook\.(\w+)$", k)
        if m:
            name = "inited" if m[2] == "initialized" else m[2]
            k = f"quantizer.vq.layers.{m[1]}._codebook.{name}"
            v = v.float().reshape(1) if name == "inited" else v
        out[k] = v.clone()
    return out


def dac_style(state):
    """codectk DAC keys -> the ``descript-audio-codec`` package's keys."""
    out = {}
    for k, v in state.items():
        k = _weight_norm_names(k).replace("quantizer.layers.", "quantizer.quantizers.")
        out[re.sub(r"\.(conv|convtr)\.(weight_g|weight_v|bias)$", r".\2", k)] = v.clone()
    return out


def test_canonical_key():
    for key in (
        "encoder.model.0.conv.conv.weight_g",
        "encoder.model.0.conv.parametrizations.weight.original0",
        "encoder.model.0.weight_g",
    ):
        assert canonical_key(key) == "encoder.model.0.weight_g"
    assert (
        canonical_key("encoder.model.13.lstm.weight_ih_l0") == "encoder.model.13.lstm.weight_ih_l0"
    )


def _roundtrip(tmp_path, family, config, style, wrap):
    torch.manual_seed(0)
    src = codectk.models.CODECS.build(config.codec, config.codec_conf).eval()
    if family == "encodec":  # give the EMA codebooks content, as a trained model has
        for layer in src.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.initialized.fill_(True)
    released = style(src.state_dict())
    path = tmp_path / "released.pt"
    torch.save(wrap(released), path)
    torch.manual_seed(1)
    codec = convert_checkpoint(family, path, config)
    wav = 0.1 * torch.randn(1, 1, 3200)
    with torch.no_grad():
        codes = src.encode(wav)
        assert torch.equal(codec.encode(wav), codes)
        torch.testing.assert_close(codec.decode(codes), src.decode(codes), rtol=0, atol=0)
    return released, path, src


def test_encodec_released_layout(tmp_path):
    released, _, _ = _roundtrip(
        tmp_path, "encodec", _config("encodec", encoder={"lstm": 2}), encodec_style, dict
    )
    for key in (  # names in the authors' encodec_24khz state dict
        "encoder.model.0.conv.conv.weight_g",
        "encoder.model.1.block.1.conv.conv.weight_v",
        "encoder.model.1.shortcut.conv.conv.bias",
        "encoder.model.13.lstm.weight_ih_l1",
        "encoder.model.15.conv.conv.weight_g",
        "decoder.model.1.lstm.weight_hh_l0",
        "decoder.model.3.convtr.convtr.weight_g",
        "quantizer.vq.layers.0._codebook.embed_avg",
        "quantizer.vq.layers.3._codebook.inited",
    ):
        assert key in released, key


def test_encodec_group_norm_layout(tmp_path):
    config = _config("encodec", encoder={"causal": False, "norm": "time_group_norm"})
    released, _, _ = _roundtrip(tmp_path, "encodec", config, encodec_style, dict)
    # the authors' NormConv1d holds the GroupNorm as <x>.conv.norm
    renamed = {k.replace(".norm.", ".conv.norm."): v for k, v in released.items()}
    torch.save(renamed, tmp_path / "gn.pt")
    convert_checkpoint("encodec", tmp_path / "gn.pt", config)
    assert "encoder.model.0.conv.conv.weight" in released


def test_dac_released_layout_metadata_and_cli(tmp_path):
    config = _config("dac")
    kwargs = dict(  # the authors' (flat) DAC arguments of dac_16k_tiny.yaml
        sample_rate=16000,
        encoder_dim=8,
        encoder_rates=[2, 4, 5, 8],
        latent_dim=None,
        decoder_dim=64,
        decoder_rates=[8, 5, 4, 2],
        n_codebooks=4,
        codebook_size=256,
        codebook_dim=8,
        quantizer_dropout=0.5,
    )

    def wrap(sd):
        return {"state_dict": sd, "metadata": {"kwargs": kwargs}}

    released, path, src = _roundtrip(tmp_path, "dac", config, dac_style, wrap)
    for key in (  # names in the authors' DAC state dicts
        "encoder.block.0.weight_g",
        "encoder.block.1.block.0.block.0.alpha",
        "encoder.block.1.block.0.block.1.weight_v",
        "encoder.block.1.block.4.bias",
        "quantizer.quantizers.0.in_proj.weight_g",
        "quantizer.quantizers.3.codebook.weight",
        "decoder.model.1.block.1.weight_g",
        "decoder.model.6.bias",
    ):
        assert key in released, key
    out = tmp_path / "exp" / "model.pt"
    yaml_path = tmp_path / "dac.yaml"
    yaml_path.write_text((CONF / "dac_16k_tiny.yaml").read_text())
    args = ["--family", "dac", "--checkpoint", str(path), "--config", str(yaml_path)]
    assert cli.main([*args, "--out", str(out)]) == 0
    loaded = codectk.load_codec(out)
    wav = 0.1 * torch.randn(1, 1, 1600)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav).wav, src(wav).wav)
    kwargs["n_codebooks"] = 8
    torch.save(wrap(released), path)
    match = r"n_codebooks: checkpoint 8 vs config 4 \(codec_conf.quantizer.n_codebooks\)"
    with pytest.raises(ConversionError, match=match):
        convert_checkpoint("dac", path, config)


def test_mismatches_name_the_keys(tmp_path):
    config = _config("dac")
    src = codectk.models.CODECS.build("dac", config.codec_conf)
    released = dac_style(src.state_dict())
    released.pop("decoder.model.6.bias")
    released["decoder.extra.weight"] = torch.zeros(1)
    torch.save(released, tmp_path / "x.pt")
    with pytest.raises(
        ConversionError, match=r"decoder\.extra\.weight.*decoder\.model\.6\.conv\.bias"
    ):
        convert_checkpoint("dac", tmp_path / "x.pt", config)
    with pytest.raises(ConversionError, match="fills codec 'encodec', the config has 'dac'"):
        convert_checkpoint("encodec", tmp_path / "x.pt", config)


def dac_discriminator_style(state, n_periods):
    """codectk ``dac`` discriminator keys -> the authors' ``Discriminator`` keys."""
    out = {}
    for k, v in state.items():
        k = _weight_norm_names(k)
        m = re.match(r"mpd\.discriminators\.(\d+)\.layers\.(\d+)\.(.*)$", k)
        if m:
            k = f"discriminators.{m[1]}.convs.{m[2]}.0.{m[3]}"
        m = re.match(r"mpd\.discriminators\.(\d+)\.post\.(.*)$", k)
        if m:
            k = f"discriminators.{m[1]}.conv_post.{m[2]}"
        m = re.match(r"mrd\.discriminators\.(\d+)\.band_convs\.(\d+)\.(\d+)\.(.*)$", k)
        if m:
            k = f"discriminators.{n_periods + int(m[1])}.band_convs.{m[2]}.{m[3]}.0.{m[4]}"
        m = re.match(r"mrd\.discriminators\.(\d+)\.conv_post\.(.*)$", k)
        if m:
            k = f"discriminators.{n_periods + int(m[1])}.conv_post.{m[2]}"
        out[k] = v.clone()
    return out


def test_dac_discriminator_layout():
    from codectk.convert.dac import DACConverter
    from codectk.discriminators import DISCRIMINATORS

    conf = {"mpd": {"periods": [2, 3], "channels": [4, 8], "strides": [3, 1]}}
    conf["mrd"] = {"fft_sizes": [128, 64], "channels": 4}
    torch.manual_seed(0)
    src = DISCRIMINATORS.build("dac", conf)
    released = dac_discriminator_style(src.state_dict(), n_periods=2)
    for key in (  # names in the authors' Discriminator state dict
        "discriminators.0.convs.0.0.weight_g",
        "discriminators.1.conv_post.weight_v",
        "discriminators.2.band_convs.0.0.0.bias",
        "discriminators.3.band_convs.4.4.0.weight_v",
        "discriminators.3.conv_post.weight_g",
    ):
        assert key in released, key
    torch.manual_seed(1)
    dst = DISCRIMINATORS.build("dac", conf)
    dst.load_state_dict(DACConverter().discriminator_state_dict({"state_dict": released}, dst))
    wav = 0.1 * torch.randn(1, 1, 600)
    with torch.no_grad():
        for a, b in zip(dst(wav), src(wav)):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, rtol=0, atol=0)
    released["discriminators.4.convs.0.0.weight_g"] = torch.zeros(4, 1, 1)  # e.g. an MSD
    with pytest.raises(ConversionError, match=r"discriminators\.4\.convs\.0\.0\.weight_g"):
        DACConverter().discriminator_state_dict(released, dst)
