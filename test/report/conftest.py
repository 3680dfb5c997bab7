"""A small evaluation tree on real speech: references, two fake experiments scored by
stage 7's scorer (one decoded at two bitrates, one at one) and, when opus-tools and
codec2 are installed, real anchors; built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from codectk.eval.score import score
from codectk.io.audio import read_audio, write_audio
from codectk.io.datadir import write_scp
from test.conftest import bundled_flacs

SECONDS = 3.0  # references are cropped to keep scoring fast
METRICS = ("pesq", "stoi", "mel_distance", "si_sdr", "visqol")
HAVE_ANCHOR_TOOLS = all(shutil.which(t) for t in ("opusenc", "opusdec", "c2enc", "c2dec"))


def _degrade(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """The reference plus white noise at ``snr_db`` (a stand-in for a codec's output)."""
    noise = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return x + noise


@pytest.fixture(scope="session")
def eval_tree(tmp_path_factory) -> Path:
    """``<root>/{dump/raw/test, exp/codec_multi, exp/codec_single, exp/anchors}``; paths
    in it are relative to ``<root>`` as in a recipe folder (tests chdir there)."""
    root = tmp_path_factory.mktemp("evaltree")
    refs = {}
    for f in bundled_flacs()[:2]:
        wav, fs = read_audio(str(f))
        path = root / "dump/raw/test/data" / f"{f.stem}.wav"
        write_audio(path, wav[0, : int(SECONDS * fs)], fs)
        refs[f.stem] = (path, wav[0, : int(SECONDS * fs)], fs)
    write_scp(root / "dump/raw/test/wav.scp", {u: f"dump/raw/test/data/{u}.wav" for u in refs})
    cwd = os.getcwd()
    os.chdir(root)
    try:
        points = {
            "codec_multi": {"test_1.5kbps": 5.0, "test_6kbps": 20.0},
            "codec_single": {"test": 12.0},
        }
        for exp, dirs in points.items():
            for d, snr in dirs.items():
                dec = Path("exp") / exp / f"decode_{d}"
                table = {}
                for i, (utt, (_, x, fs)) in enumerate(refs.items()):
                    write_audio(dec / "wav" / f"{utt}.wav", _degrade(x, snr, i), fs)
                    table[utt] = str(dec / "wav" / f"{utt}.wav")
                write_scp(dec / "wav.scp", table)
                kbps = float(d.split("_")[1].removesuffix("kbps")) if "_" in d else 3.0
                score(
                    "dump/raw/test/wav.scp",
                    dec / "wav.scp",
                    Path("exp") / exp / "scores" / d,
                    METRICS,
                    bitrate_kbps=kbps,
                )
        if HAVE_ANCHOR_TOOLS:
            from codectk.bin import anchors

            assert (
                anchors.main(
                    [
                        "--anchors",
                        "opus codec2",
                        "--opus_kbps",
                        "6 24",
                        "--codec2_kbps",
                        "2.4",
                        "--ref_scp",
                        "dump/raw/test/wav.scp",
                        "--set",
                        "test",
                        "--anchors_dir",
                        "exp/anchors",
                        "--metrics",
                        ",".join(METRICS),
                    ]
                )
                == 0
            )
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture(scope="session")
def report(eval_tree: Path) -> Path:
    """``codectk.bin.report`` over the evaluation tree: ``<root>/exp/codec_multi/report``."""
    from codectk.bin import report

    cwd = os.getcwd()
    os.chdir(eval_tree)
    try:
        args = ["--exp_dirs", "exp/codec_multi", "exp/codec_single", "--sets", "test"]
        args += ["--out_dir", "exp/codec_multi/report", "--n_utts", "2"]
        if HAVE_ANCHOR_TOOLS:
            args += ["--anchors_dir", "exp/anchors"]
        assert report.main(args) == 0
    finally:
        os.chdir(cwd)
    return eval_tree / "exp/codec_multi/report"
