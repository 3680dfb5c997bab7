"""Released models by name: ``codectk.load_codec(name, weights=...)`` and ``codectk
convert --name``, on a file laid out as the authors' ``encodec_24khz`` (random weights in
their key names: no download)."""

from __future__ import annotations

import pytest
import torch

import codectk
from codectk.bin import cli
from codectk.convert.released import CONF_DIR, RELEASED, released_config
from codectk.io.modelfile import CheckpointError
from test.conftest import REPO
from test.convert.test_convert import encodec_style
from test.single_thread import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def encodec_file(tmp_path_factory):
    """(the authors'-layout file, the codectk codec it came from)."""
    torch.manual_seed(0)
    config = released_config("encodec_24khz")
    src = codectk.models.CODECS.build(config.codec, config.codec_conf).eval()
    for layer in src.quantizer.layers:  # codebooks with content, as the released ones
        layer.codebook.embed.normal_()
        layer.codebook.initialized.fill_(True)
    path = tmp_path_factory.mktemp("weights") / "encodec_24khz-d7cc33bc.th"
    torch.save(encodec_style(src.state_dict()), path)
    return path, src


def test_every_name_has_a_config_and_an_address():
    assert CONF_DIR == REPO / "conf"
    for name, entry in RELEASED.items():
        assert (CONF_DIR / entry.config).is_file(), name
        assert entry.url.startswith("https://"), name
    # the 48 kHz release is stereo; the repository config is mono unless told
    assert released_config("encodec_48khz").codec_conf["channels"] == 2


def test_load_by_name_with_the_users_file(encodec_file):
    path, src = encodec_file
    codec = codectk.load_codec("encodec_24khz", weights=path)
    assert codec.sample_rate == 24000 and not codec.training
    assert not any(p.requires_grad for p in codec.parameters())
    wav = 0.1 * torch.randn(1, 1, 2400)
    with torch.no_grad():
        codes = src.encode(wav, 2)
        assert torch.equal(codec.encode(wav, bandwidth=1.5), codes)
        torch.testing.assert_close(codec.decode(codes), src.decode(codes), rtol=0, atol=0)


def test_a_name_without_weights_says_where_they_are():
    with pytest.raises(CheckpointError, match="dl.fbaipublicfiles.com/encodec/v0/"):
        codectk.load_codec("encodec_24khz")


def test_codectk_convert_verb(tmp_path, encodec_file, capsys):
    path, src = encodec_file
    assert cli.main(["convert", "--list"]) == 0
    listing = capsys.readouterr().out
    for name, entry in RELEASED.items():
        assert name in listing and entry.url in listing
    out = tmp_path / "exp" / "model.pt"
    args = ["convert", "--name", "encodec_24khz", "--checkpoint", str(path), "--out", str(out)]
    assert cli.main(args) == 0
    loaded = codectk.load_codec(out)
    wav = 0.1 * torch.randn(1, 1, 2400)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(loaded.encode(wav)), src.decode(src.encode(wav)))
    with pytest.raises(SystemExit):
        cli.main(["convert", "--name", "encodec_24khz", "--family", "dac", "--checkpoint", "x"])
