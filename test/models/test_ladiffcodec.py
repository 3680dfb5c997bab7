"""LaDiffCodec: continuous AE, condition alignment, latent scaling, decoding determinism,
the three phases one training step each, and the paper-size parameter counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from codectk.config import build_train_config, load_train_config
from codectk.errors import CodectkError
from codectk.inference import load_codec
from codectk.io.modelfile import read_model_file
from codectk.models import CODECS
from codectk.models.ladiffcodec import ContinuousAE, LaDiffCodec
from codectk.train.trainer import Trainer
from test.conftest import REPO
from test.helpers import make_soundstream_conf
from test.single_thread import one_torch_thread  # noqa: F401

TINY_AE = dict(encoder=dict(dimension=8, n_filters=4, ratios=[8, 4], lstm=0))


def make_ladiff(**overrides) -> LaDiffCodec:
    torch.manual_seed(0)
    conf = dict(
        discrete_codec="soundstream",
        discrete_codec_conf=make_soundstream_conf()["codec_conf"],
        ae_conf=TINY_AE,
        cond_bandwidth=0.8,
        diff_dims=16,
        dim_mults=[1, 2, 2],
        timesteps=100,
        sampling_steps=3,
        scaling="feature",
    )
    conf.update(overrides)
    model = CODECS.build("ladiffcodec", conf)
    for name, buf in model.discrete.quantizer.named_buffers():
        if name.endswith("codebook.embed"):
            buf.normal_()  # a trained-looking codebook (untrained ones are zeros)
        elif name.endswith("initialized"):
            buf.fill_(True)
    return model


def test_paper_size_parameter_counts():
    """The authors' README configuration measured from their code: continuous AE
    1,086,050 parameters, U-Net 135,118,976 (built on the meta device)."""
    ae_cfg = load_train_config(REPO / "conf/ladiffcodec_ae_16k.yaml")
    codec_cfg = load_train_config(REPO / "conf/ladiffcodec_codec_16k.yaml")
    diff = yaml.safe_load((REPO / "conf/ladiffcodec_diffusion_16k.yaml").read_text())
    conf = {
        **diff["codec_conf"],
        "discrete_codec": codec_cfg.codec,
        "discrete_codec_conf": codec_cfg.codec_conf,
        "ae_conf": ae_cfg.codec_conf,
    }
    with torch.device("meta"):
        ae = CODECS.build(ae_cfg.codec, ae_cfg.codec_conf)
        model = CODECS.build("ladiffcodec", conf)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ae) == 1_086_050 and count(model.ae) == 1_086_050
    assert count(model.diffusion.denoiser) == 135_118_976
    assert model.n_codebooks == 2 and model.bitrate() == pytest.approx(1.0)
    assert model.ae.hop_length == 32 and model.hop_length == 320


def test_continuous_ae_reconstructs_and_has_no_codes():
    ae = ContinuousAE(**TINY_AE)
    wav = torch.randn(2, 1, 1000)
    out = ae(wav)
    assert out.wav.shape == wav.shape and out.codes.shape == (2, 0, 32)
    assert ae.latent(wav).shape == (2, 8, 32) and ae.bitrate() == 0
    with pytest.raises(CodectkError, match="no discrete codes"):
        ae.encode(wav)


def test_a_version_1_config_builds_the_same_codec():
    """A flat (version-1) phase-3 codec_conf, as model files stored it before the sections:
    its discrete codec's conf and its autoencoder's are upgraded too."""
    v1 = dict(
        discrete_codec="soundstream",
        discrete_codec_conf=dict(
            sample_rate=16000,
            n_filters=4,
            dimension=16,
            n_residual_layers=1,
            n_codebooks=4,
            codebook_size=256,
            ema_decay=0.99,
            kmeans_iters=2,
        ),
        ae_conf=dict(dimension=8, n_filters=4, ratios=[8, 4], lstm=0, causal=True),
        cond_bandwidth=0.8,
        diff_dims=16,
        dim_mults=[1, 2, 2],
        timesteps=100,
        sampling_steps=3,
        scaling="feature",
    )
    config = build_train_config({"codec": "ladiffcodec", "codec_conf": v1}, where="m.pt")
    conf = config.codec_conf
    assert conf["ae_conf"] == {"encoder": {**TINY_AE["encoder"], "causal": True}}
    assert conf["discrete_codec_conf"]["quantizer"]["decay"] == 0.99
    torch.manual_seed(0)
    old = CODECS.build("ladiffcodec", conf).state_dict()
    new = make_ladiff(ae_conf={"encoder": {**TINY_AE["encoder"], "causal": True}})
    new = new.state_dict()
    assert list(old) == list(new)
    for k, v in old.items():
        if not k.endswith(("codebook.embed", "initialized")):  # make_ladiff fills those
            assert torch.equal(v, new[k]), k
    with pytest.raises(ValueError, match=r"codec_conf.ae_conf: unknown key\(s\) \['n_filters'\]"):
        CODECS.build("ladiffcodec", {**conf, "ae_conf": {"n_filters": 4}})


@pytest.mark.parametrize(("ratios", "hop"), [([8, 4], 32), ([8, 5], 40), ([8, 4, 4], 128)])
def test_condition_is_aligned_to_the_latent_frame_rate(ratios, hop):
    """Codec hop 320 against AE hops 32 (x10), 40 (x8) and 128 (x2.5, not an integer)."""
    model = make_ladiff(ae_conf={"encoder": {**TINY_AE["encoder"], "ratios": ratios}}).eval()
    wav = torch.randn(1, 1, 16000)
    codes = model.encode(wav)  # (1, 2, 50)
    n_frames = model.latent_frames(wav.shape[-1])
    assert n_frames == model.ae.latent(wav).shape[-1] == -(-16000 // hop)
    c = model.condition(codes, n_frames)
    assert c.shape == (1, 16, n_frames)
    feats = model.discrete.quantizer.decode(codes)  # (1, 16, 50)
    feats = feats / feats.abs().amax()
    if 320 % hop == 0:  # an integer ratio: each codec frame repeated exactly
        torch.testing.assert_close(c, feats.repeat_interleave(320 // hop, dim=-1))
    else:
        for i in (0, 1, n_frames - 1):  # frame i covers samples from i * hop
            torch.testing.assert_close(c[..., i], feats[..., i * hop // 320])
    assert model.decode(codes).shape == (1, 1, 50 * 320)


def test_scaling_statistics_and_round_trip():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 50) * torch.arange(1.0, 9.0)[None, :, None] + 3.0
    feat = make_ladiff(scaling="feature")
    with pytest.raises(CodectkError, match="not fitted"):
        feat.train()(torch.randn(1, 1, 3200))
    feat.fit_scaling_([z[:2], z[2:]])
    flat = z.transpose(0, 1).reshape(8, -1)
    torch.testing.assert_close(feat.latent_mean, flat.mean(1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(feat.latent_std, flat.std(1, unbiased=False), rtol=1e-4, atol=1e-4)
    x = feat.scale(z)
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1.0, abs=1e-2)
    torch.testing.assert_close(feat.unscale(x), z)
    glob = make_ladiff(scaling="global")
    glob.fit_scaling_([z])
    rms = float(z.pow(2).mean().sqrt())
    assert torch.allclose(glob.latent_std, torch.full((8,), rms))
    assert float(glob.latent_mean.abs().max()) == 0.0
    state = glob.state_dict()
    assert "latent_std" in state and bool(state["scaling_fitted"])


def test_decoding_is_deterministic_and_steps_are_settable():
    model = make_ladiff().eval()
    model.fit_scaling_([torch.randn(1, 8, 100)])
    codes = model.encode(torch.randn(1, 1, 6400))
    a, b = model.decode(codes), model.decode(codes)
    assert a.shape == (1, 1, 6400) and torch.equal(a, b)
    model.set_sampling(5)
    c = model.decode(codes)
    assert not torch.allclose(a, c)
    model.sampling_seed = 1
    assert not torch.allclose(c, model.decode(codes))
    with pytest.raises(ValueError, match="sampling_steps"):
        model.set_sampling(0)
    with pytest.raises(ValueError, match="trained on 2 codebooks"):
        model.encode(torch.randn(1, 1, 6400), 4)
    with pytest.raises(ValueError, match="decodes 2"):
        model.decode(codes[:, :1])


def _trainer(tmp_path: Path, dumped, name: str, conf: dict) -> Trainer:
    return Trainer(build_train_config(conf), tmp_path / name, dumped["train"], dumped["valid"])


def test_three_phases_one_training_step_each(tmp_path: Path, dumped):
    from codectk.train.ladiffcodec import prepare

    small = dict(max_steps=1, valid_interval=1, log_interval=1, valid_max_duration=0.5)
    _trainer(tmp_path, dumped, "codec", make_soundstream_conf(**small)).run()
    ae_conf = make_soundstream_conf(
        codec="continuous_ae",
        codec_conf=TINY_AE,
        loss_conf={"weights": {"mel": 1.0, "feat": 10.0, "commit": 0.0}},
        discriminator_start_step=0,
        **small,
    )
    _trainer(tmp_path, dumped, "ae", ae_conf).run()
    ae_hist = read_model_file(tmp_path / "ae")[0]
    assert ae_hist["config"]["codec"] == "continuous_ae"
    diff_yaml = tmp_path / "diff.yaml"
    diff = {
        "codec": "ladiffcodec",
        "codec_conf": dict(
            cond_bandwidth=0.8, diff_dims=16, dim_mults=[1, 2, 2], timesteps=100, sampling_steps=2
        ),
        "discriminator": None,
        "loss": "model_only",
        "optim_conf": {"lr": 0.001},
        "batch_size": 2,
        "segment_duration": 0.2,
        "best_model_criterion": "diffusion",
        "keep_nbest_models": 1,
        **small,
    }
    diff_yaml.write_text(yaml.safe_dump(diff))
    config = prepare(
        diff_yaml, tmp_path / "codec", tmp_path / "ae", dumped["train"], tmp_path / "prep"
    )
    t = Trainer(load_train_config(config), tmp_path / "diff", dumped["train"], dumped["valid"])
    codec_weights = read_model_file(tmp_path / "codec")[0]["model"]
    for k, v in codec_weights.items():  # init_from copied the frozen codec
        assert torch.equal(t.codec.state_dict()[f"discrete.{k}"], v), k
    before = {k: v.clone() for k, v in t.codec.state_dict().items()}
    t.run()
    after = t.codec.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("diffusion.denoiser.") for k in moved), moved
    assert any("g_diffusion" in r for r in t.history if r["phase"] == "train")
    assert any("diffusion" in r for r in t.history if r["phase"] == "valid")
    model = load_codec(tmp_path / "diff", "valid.diffusion.ave.pt")  # self-contained
    wav = torch.randn(1, 1, 3200)
    out = model.decode(model.encode(wav))
    assert out.shape == (1, 1, 3200) and torch.isfinite(out).all()


def test_benchmark_suite_quick_smoke():
    from codectk.benchmarks import ladiffcodec as suite

    rows = suite.run([1], "cpu", quick=True)
    names = [r["name"] for r in rows]
    assert names == ["unet_step", "decode_fast"]
    for r in rows:
        assert r["suite"] == "ladiffcodec" and r["value"] > 0 and r["threads"] == 1
    assert rows[1]["target_rule"] == "<=" and rows[1]["target"] == pytest.approx(11.2)
