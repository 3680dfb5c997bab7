"""``codectk stream --in_scp --out_dir``: one job of a streaming job array, one model load
for many utterances, each streamed as ``codectk stream IN OUT`` would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import stream
from test.bin.test_audiodec_bins import _tiny_symad_exp
from test.single_thread import one_torch_thread  # noqa: F401


def test_scp_mode_equals_one_file_at_a_time(tmp_path: Path, flacs):
    exp = _tiny_symad_exp(tmp_path)
    scp = tmp_path / "wav.scp"
    utts = {}
    for f, n in zip(flacs[:2], (16000 + 77, 8000), strict=True):  # one with a partial chunk
        x, fs = sf.read(f, dtype="float32")
        utts[f.stem] = tmp_path / f"{f.stem}.wav"
        sf.write(utts[f.stem], x[:n], fs)
    scp.write_text("".join(f"{u} {p}\n" for u, p in utts.items()))
    out = tmp_path / "streamed"
    assert stream.main(["--in_scp", str(scp), "--out_dir", str(out), "--model", str(exp)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.wav" for u in utts)
    for utt, src in utts.items():
        one = tmp_path / f"{utt}.one.wav"
        stream.main([str(src), str(one), "--model", str(exp)])
        a, b = sf.read(out / f"{utt}.wav")[0], sf.read(one)[0]
        assert len(a) == len(sf.read(src)[0]) and np.array_equal(a, b)  # a fresh stream each


@pytest.mark.parametrize(
    "args",
    [[], ["a.wav"], ["--in_scp", "x.scp"], ["a.wav", "b.wav", "--in_scp", "x", "--out_dir", "o"]],
)
def test_scp_mode_or_file_mode(args: list[str]):
    with pytest.raises(SystemExit) as e:
        stream.main([*args, "--model", "m"])
    assert e.value.code == 2
