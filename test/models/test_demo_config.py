"""The bundled recipe's configs build, and the demo codec is what demo.sh and the
README say: ESC at 6 kbps (issue 21, item 4)."""

from __future__ import annotations

import pytest
import torch

import codectk
from test.conftest import REPO

CONF = REPO / "egs" / "mini_librispeech" / "codec1" / "conf"


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_config_builds(path):
    if path.stem == "slurm":
        pytest.skip("the SLURM queue config, not a training config")
    if path.stem == "ladiffcodec_diffusion_16k_tiny":
        pytest.skip(
            "LaDiffCodec's diffusion phase builds on a trained codec (test_ladiffcodec_recipe)"
        )
    codec = codectk.build_codec(str(path))
    assert sum(p.numel() for p in codec.parameters()) > 0


def test_demo_codec_is_esc_at_6kbps_and_round_trips():
    demo = (REPO / "egs" / "mini_librispeech" / "codec1" / "demo.sh").read_text()
    assert "config=conf/esc_16k_6kbps_demo.yaml" in demo
    codec = codectk.build_codec(str(CONF / "esc_16k_6kbps_demo.yaml")).eval()
    assert codec.sample_rate == 16000 and max(codec.bandwidths) == pytest.approx(6.0)
    wav = torch.randn(1, 1, 16000) * 0.1
    with torch.inference_mode():
        codes = codec.encode(wav, bandwidth=6.0)
        assert codes.shape[:2] == (1, 12) and codes.shape[2] == 50  # 12 codebooks at 50 Hz
        assert codec.bitrate(codes.shape[1]) == pytest.approx(6.0)
        assert codec.decode(codes, length=16000).shape == wav.shape
