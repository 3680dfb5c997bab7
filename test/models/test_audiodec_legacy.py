"""Model files written before AudioDec's layers joined codectk.nn.conv (issue 20) still
load: their transposed convs' ``deconv`` weights map to ``convtr`` (SConvTranspose1d
version 2), and codes and waveforms are those the old code computed
(test/data/legacy, written by main at e090ce4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from codectk.bin import pack
from codectk.inference import load_codec
from codectk.streaming import Streamer
from test.conftest import REPO
from test.single_thread import one_torch_thread  # noqa: F401

LEGACY = REPO / "test/data/legacy"


@pytest.mark.parametrize("name", ["symad", "audiodec"])
def test_old_model_files_and_packs_load_and_decode_as_before(name, tmp_path: Path):
    io = torch.load(LEGACY / f"{name}_tiny.io.pt", weights_only=True)
    old_keys = torch.load(LEGACY / f"{name}_tiny.pt", weights_only=True)["model"]
    assert any(".deconv." in k for k in old_keys)  # the fixture has the old names
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(LEGACY / f"{name}_tiny.pt", exp / "valid.mel_distance.ave.pt")
    config = torch.load(LEGACY / f"{name}_tiny.pt", weights_only=True)["config"]
    (exp / "config.yaml").write_text(yaml.safe_dump(config))  # as the experiment folder has
    zipped = tmp_path / "packed.zip"
    assert pack.main(["--exp_dir", str(exp), "--out", str(zipped)]) == 0
    for source in (LEGACY / f"{name}_tiny.pt", zipped):  # model file, then packed archive
        codec = load_codec(source)
        assert not any(".deconv." in k for k in codec.state_dict())
        with torch.inference_mode():
            codes = codec.encode(io["wav"])
            wav = codec.decode(io["codes"])
        assert torch.equal(codes, io["codes"])
        torch.testing.assert_close(wav, io["decoded"], rtol=0, atol=1e-5)
    streamer = Streamer(load_codec(zipped, fold_weight_norm=True), 48)
    c, y, _ = streamer.stream(io["wav"])
    assert torch.equal(c, io["codes"])
    torch.testing.assert_close(y, io["decoded"], rtol=0, atol=1e-5)
