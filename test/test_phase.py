"""Multi-phase recipes (codectk.phase): ``${exp:NAME}`` references, ``phase_inputs``, the
chain check, and the shipped configs that state their phases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codectk.config import ConfigError, build_train_config, load_yaml
from codectk.phase import (
    check_chain,
    check_phase_inputs,
    find_references,
    resolve_references,
    resolve_train_config,
)
from test.conftest import REPO
from test.helpers import make_soundstream_conf

CONF_DIRS = [REPO / "conf", REPO / "egs" / "mini_librispeech" / "codec1" / "conf"]


def test_references_resolve_to_sibling_experiments(tmp_path: Path):
    data = {
        "codec": "audiodec",
        "codec_conf": {"stats": "${exp:symAD_a}/code_stats.npy", "n": 3},
        "init_from": "${exp:symAD_a}",
        "init_modules": ["encoder", "x${exp:b.1}"],
    }
    refs = find_references(data, "v.yaml")
    assert [(r.key, r.name) for r in refs] == [
        ("codec_conf.stats", "symAD_a"),
        ("init_from", "symAD_a"),
        ("init_modules[1]", "b.1"),
    ]
    out = resolve_references(data, tmp_path, "v.yaml", check=False)
    assert out["codec_conf"] == {"stats": f"{tmp_path}/codec_symAD_a/code_stats.npy", "n": 3}
    assert out["init_from"] == f"{tmp_path}/codec_symAD_a"
    assert out["init_modules"] == ["encoder", f"x{tmp_path}/codec_b.1"]
    assert data["init_from"] == "${exp:symAD_a}"  # the input is not changed


@pytest.mark.parametrize(
    "value", ["${exp:}", "${exp:a b}", "${exp:a", "${expdir}/x", "${exp:../a}"]
)
def test_malformed_reference_names_file_and_key(value: str):
    with pytest.raises(ConfigError, match=r"^v\.yaml: codec_conf\.stats: .* is not a reference"):
        find_references({"codec_conf": {"stats": value}}, "v.yaml")


def test_dangling_reference_says_which_phase_to_train(tmp_path: Path):
    data = {"init_from": "${exp:symAD_a}", "codec_conf": {"stats": "${exp:symAD_a}/s.npy"}}
    with pytest.raises(ConfigError) as e:
        resolve_references(data, tmp_path, "v.yaml")
    assert str(e.value).startswith(
        f"v.yaml: init_from: ${{exp:symAD_a}} is {tmp_path}/codec_symAD_a"
    )
    assert "no experiment" in str(e.value) and "--tag symAD_a" in str(e.value)
    (tmp_path / "codec_symAD_a").mkdir()
    with pytest.raises(ConfigError, match="the experiment is there"):
        resolve_references(data, tmp_path, "v.yaml")
    (tmp_path / "codec_symAD_a" / "s.npy").write_bytes(b"")
    assert resolve_references(data, tmp_path, "v.yaml")["init_from"] == str(
        tmp_path / "codec_symAD_a"
    )


def test_phase_inputs_roles():
    good = {"codec": "ladiffcodec", "phase_inputs": {"discrete_codec": "a", "autoencoder": "b"}}
    check_phase_inputs(good, "d.yaml")
    with pytest.raises(ConfigError, match="d.yaml: phase_inputs are read by .*ladiffcodec_prepare"):
        check_phase_inputs(good, "d.yaml", training=True)
    with pytest.raises(ConfigError, match=r"needs exactly \['discrete_codec', 'autoencoder'\]"):
        check_phase_inputs({**good, "phase_inputs": {"discrete_codec": "a"}}, "d.yaml")
    with pytest.raises(ConfigError, match="a symad phase names its predecessor in init_from"):
        check_phase_inputs({"codec": "symad", "phase_inputs": {"x": "y"}}, "d.yaml")
    with pytest.raises(ConfigError, match="phase_inputs.autoencoder: 3 must be a path"):
        check_phase_inputs({**good, "phase_inputs": {"discrete_codec": "a", "autoencoder": 3}}, "d")


def test_chain_names_earlier_phases_or_finished_experiments(tmp_path: Path):
    first = ("conf/a.yaml", {"codec": "symad"})
    second = ("conf/b.yaml", {"codec": "audiodec", "init_from": "${exp:a}"})
    refs = check_chain([first, second], tmp_path)
    assert [[r.name for r in rs] for rs in refs] == [[], ["a"]]
    with pytest.raises(ConfigError) as e:
        check_chain([second, first], tmp_path)
    assert str(e.value).startswith("conf/b.yaml: init_from: ${exp:a} names a, which is neither")
    assert "(before it: none)" in str(e.value)
    (tmp_path / "codec_a").mkdir()  # a finished experiment counts
    check_chain([second], tmp_path)


def test_resolve_train_config(tmp_path: Path):
    (tmp_path / "codec_a").mkdir()
    config = build_train_config(make_soundstream_conf(init_from="${exp:a}"))
    assert resolve_train_config(config, "c.yaml", tmp_path).init_from == str(tmp_path / "codec_a")
    lad = build_train_config(
        {"codec": "ladiffcodec", "phase_inputs": {"discrete_codec": "a", "autoencoder": "b"}}
    )
    with pytest.raises(ConfigError, match="ladiffcodec_prepare"):
        resolve_train_config(lad, "d.yaml", tmp_path)


def test_train_resolves_references_against_the_output_folders_parent(tmp_path: Path, dumped):
    """Two runs of codectk.bin.train: the second names the first (init_from: ${exp:a});
    its resolved config.yaml holds the path, and the first's weights were copied."""
    import torch

    from codectk.bin import train
    from codectk.io.modelfile import read_model_file

    conf = tmp_path / "a.yaml"
    conf.write_text(yaml.safe_dump(make_soundstream_conf(max_steps=0)))
    data = ["--train_data", str(dumped["train"]), "--valid_data", str(dumped["valid"])]
    exp = tmp_path / "exp"
    assert train.main(["--config", str(conf), "--output_dir", str(exp / "codec_a"), *data]) == 0
    args = ["--config", str(conf), "--output_dir", str(exp / "codec_b"), *data, "--seed", "5"]
    with pytest.raises(ConfigError, match="no experiment .*codec_nope"):
        train.main([*args, "--init_from", "${exp:nope}"])
    assert train.main([*args, "--init_from", "${exp:a}"]) == 0
    assert load_yaml(exp / "codec_b" / "config.yaml")["init_from"] == str(exp / "codec_a")
    a, b = (read_model_file(exp / f"codec_{x}")[0]["model"] for x in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _configs():
    return sorted(p for d in CONF_DIRS for p in d.glob("*.yaml"))


@pytest.mark.parametrize("path", _configs(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_configs_name_phases_beside_them(path: Path):
    """Every reference of a shipped config names a config in the same folder (the phase
    drivers tag each phase with its config's file name)."""
    data = load_yaml(path)
    check_phase_inputs(data, str(path))
    for ref in find_references(data, str(path)):
        assert (path.parent / f"{ref.name}.yaml").is_file(), (ref.key, ref.name)


@pytest.mark.parametrize(
    "conf_dir, chain",
    [
        (CONF_DIRS[1], ["symAD_16k_tiny", "AudioDec_v1_symAD_16k_tiny", "symAD_16k_tiny_denoise"]),
        (CONF_DIRS[1], ["soundstream_16k_tiny", "ladiffcodec_ae_16k_tiny", "ladiffcodec_diffusion_16k_tiny"]),
        (CONF_DIRS[0], ["symAD_vctk_48000_hop300", "AudioDec_v0_symAD_vctk_48000_hop300_clean",
                        "AudioDec_v1_symAD_vctk_48000_hop300_clean",
                        "AudioDec_v2_symAD_vctk_48000_hop300_clean", "symAD_vctk_48000_hop300_denoise"]),
        (CONF_DIRS[0], ["ladiffcodec_codec_16k", "ladiffcodec_ae_16k", "ladiffcodec_diffusion_16k"]),
    ],
)  # fmt: skip
def test_recipe_chains(conf_dir: Path, chain: list[str], tmp_path: Path):
    """The chains run_audiodec.sh and run_ladiffcodec.sh train, in their order; every later
    AudioDec phase starts from the symAD, and the denoising one has its architecture."""
    phases = [(str(conf_dir / f"{n}.yaml"), load_yaml(conf_dir / f"{n}.yaml")) for n in chain]
    refs = check_chain(phases, tmp_path)
    assert refs[-1] and not refs[0]
    first = phases[0][1]
    for (path, data), rs in zip(phases[1:], refs[1:], strict=True):
        names = {r.name for r in rs}
        if first["codec"] == "symad":
            assert names == {chain[0]} and data["init_from"] == f"${{exp:{chain[0]}}}", path
        if path.endswith("_denoise.yaml"):
            assert data["codec_conf"] == first["codec_conf"]
            assert (
                data["freeze_modules"] == ["quantizer", "decoder"] and data["discriminator"] is None
            )
        if data["codec"] == "audiodec":
            assert data["codec_conf"]["stats"] == f"${{exp:{chain[0]}}}/code_stats.npy"
    if phases[-1][1]["codec"] == "ladiffcodec":
        assert phases[-1][1]["phase_inputs"] == {
            "discrete_codec": f"${{exp:{chain[0]}}}",
            "autoencoder": f"${{exp:{chain[1]}}}",
        }
