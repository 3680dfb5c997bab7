"""Stage 6's ``--sampling_steps`` reaches the diffusion decoder (it was once parsed and
ignored), and is refused for codecs that do not sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codectk.bin import codec_inference
from codectk.io.modelfile import model_file, save_atomic
from test.helpers import make_soundstream_conf
from test.models.test_ladiffcodec import make_ladiff
from test.single_thread import one_torch_thread  # noqa: F401


def _scp(tmp_path: Path, fs: int = 16000) -> Path:
    rng = np.random.default_rng(0)
    wav = tmp_path / "u1.wav"
    sf.write(wav, 0.1 * rng.standard_normal(fs // 4).astype(np.float32), fs)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u1 {wav}\n")
    return scp


def _args(model: Path, scp: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", str(model), "--in_scp", str(scp), "--out_dir", str(out / "job"),
        "--wav_dir", str(out / "wav"), *extra,
    ]  # fmt: skip


def test_sampling_steps_reach_the_sampler(tmp_path, monkeypatch):
    model = make_ladiff(sampling_steps=3)
    steps_used = []
    sample = type(model.diffusion).ddim_sample

    def spy(self, shape, cond, steps, *args, **kwargs):
        steps_used.append(steps)
        return sample(self, shape, cond, steps, *args, **kwargs)

    monkeypatch.setattr(type(model.diffusion), "ddim_sample", spy)
    monkeypatch.setattr(codec_inference, "load_codec", lambda *a, **k: model)
    scp = _scp(tmp_path)
    assert (
        codec_inference.main(_args(tmp_path / "m.pt", scp, tmp_path / "a", "--sampling_steps", "2"))
        == 0
    )
    assert model.sampling_steps == 2 and steps_used == [2]
    with pytest.raises(SystemExit):  # outside 1..timesteps: a usage error, not a traceback
        codec_inference.main(_args(tmp_path / "m.pt", scp, tmp_path / "b", "--sampling_steps", "0"))


def test_sampling_steps_refused_without_a_diffusion_decoder(tmp_path, capsys):
    conf = make_soundstream_conf()
    from codectk.models import CODECS

    codec = CODECS.build(conf["codec"], conf["codec_conf"])
    save_atomic(model_file(conf, codec.state_dict(), 0), tmp_path / "m.pt")
    with pytest.raises(SystemExit):
        codec_inference.main(
            _args(tmp_path / "m.pt", _scp(tmp_path), tmp_path / "a", "--sampling_steps", "2")
        )
    assert "has no diffusion decoder" in capsys.readouterr().err
