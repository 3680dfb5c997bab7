"""Parity with the authors' packages: convert a randomly initialised reference model and
check that codectk's codec gives the same codes and waveforms.

Runs only where ``encodec`` / ``descript-audio-codec`` are installed, i.e. in the
comparison environment that ``tools/install_compare_env.sh`` builds (they need
torchaudio, which is never installed into tools/venv); skipped elsewhere::

    bash tools/install_compare_env.sh && tools/venv-compare/bin/pytest -q test/convert
"""

from __future__ import annotations

import pytest
import torch

from codectk.config import load_train_config
from codectk.convert import convert_checkpoint
from test.conftest import REPO


def _wav(sample_rate: int, seconds: float = 0.5, channels: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(1, channels, int(sample_rate * seconds), generator=g)


@pytest.mark.parametrize(
    ("factory", "config", "overrides"),
    [
        ("encodec_model_24khz", "encodec_24k_24kbps", []),
        ("encodec_model_48khz", "encodec_48k_24kbps", ["--codec_conf.channels", "2"]),
    ],
)
def test_encodec_parity(tmp_path, factory, config, overrides):
    encodec = pytest.importorskip("encodec")
    torch.manual_seed(0)
    ref = getattr(encodec.EncodecModel, factory)(pretrained=False).eval()
    for layer in ref.quantizer.vq.layers:  # random codebooks, as after training
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1)
    torch.save(ref.state_dict(), tmp_path / "ref.th")
    conf = load_train_config(REPO / "conf" / f"{config}.yaml", overrides)
    codec = convert_checkpoint("encodec", tmp_path / "ref.th", conf)
    ref.segment = None  # whole-utterance coding, as codectk
    ref.normalize = False  # codectk sends no volume scale beside the codes
    wav = _wav(codec.sample_rate, channels=codec.channels)
    with torch.no_grad():
        z_ref = ref.encoder(wav)
        torch.testing.assert_close(codec.encoder(wav), z_ref, rtol=1e-4, atol=1e-5)
        ref.set_target_bandwidth(6.0)
        codes_ref = ref.encode(wav)[0][0]  # (B, K, F)
        codes = codec.encode(wav, codec.n_quantizers_for_bandwidth(6.0))
        assert torch.equal(codes, codes_ref)
        torch.testing.assert_close(
            codec.decode(codes), ref.decode([(codes_ref, None)]), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        ("dac_44k_8kbps", {}),
        (
            "dac_16k_6kbps",
            dict(
                sample_rate=16000,
                encoder_rates=[2, 4, 5, 8],
                decoder_rates=[8, 5, 4, 2],
                n_codebooks=12,
            ),
        ),
    ],
)
def test_dac_parity(tmp_path, config, kwargs):
    dac = pytest.importorskip("dac")
    torch.manual_seed(0)
    ref = dac.DAC(**kwargs).eval()
    ref.save(str(tmp_path / "ref.pth"), package=False)  # {"state_dict", "metadata"}
    conf = load_train_config(REPO / "conf" / f"{config}.yaml")
    codec = convert_checkpoint("dac", tmp_path / "ref.pth", conf)
    wav = _wav(codec.sample_rate)
    with torch.no_grad():
        x = ref.preprocess(wav, codec.sample_rate)
        z_ref, codes_ref, *_ = ref.encode(x)
        codes = codec.encode(wav)
        assert torch.equal(codes, codes_ref)
        torch.testing.assert_close(codec.quantizer.decode(codes), z_ref, rtol=1e-4, atol=1e-4)
        out, out_ref = codec.decode(codes), ref.decode(z_ref)
    # descript-audio-codec 1.0.0's transposed convs have no output_padding, so each odd
    # stride (the 5 of the 16 and 24 kHz models) drops the last sample (later releases
    # and codectk give F * hop samples); both agree up to the end's receptive field.
    n = out_ref.shape[-1]
    margin = 0 if n == out.shape[-1] else 1024
    torch.testing.assert_close(
        out[..., : n - margin], out_ref[..., : n - margin], rtol=1e-4, atol=1e-5
    )
