"""A resume state written by codectk before the sync-free step and the cast changes.

``test/train/data/main_ab60db3/`` holds two files written on CPU (one torch thread) by
main's code at commit ab60db334cbaa7f4317f6ffb27c5c57c76ea091c with :func:`write_fixture`:

* ``checkpoint_step3.pt``: the resume state after 3 steps of :func:`small_conf` (max_steps 3),
  and ``3steps.pt``, the snapshot its n-best table names;
* ``weights_step6.pt``: codec and discriminator weights after 6 uninterrupted steps.

To write them again (with that commit checked out)::

    OMP_NUM_THREADS=1 PYTHONPATH=. tools/venv/bin/python -c "from pathlib import Path; \\
        from test.train.old_checkpoint import write_fixture; write_fixture(Path('out'))"
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from codectk.models.soundstream import soundstream_tiny_conf
from test.helpers import make_soundstream_conf

FIXTURE = Path(__file__).parent / "data" / "main_ab60db3"


def small_conf(**overrides) -> dict:
    """A SoundStream of 8 k parameters with an MSD and an STFT discriminator (Adam)."""
    conf = make_soundstream_conf(
        codec_conf=soundstream_tiny_conf(
            encoder=dict(n_filters=2, dimension=8, ratios=[4, 2], n_residual_layers=1),
            quantizer=dict(codebook_size=16, kmeans_iters=2),
        ),
        discriminator_conf={
            "discriminators": {
                "msd": {"scales": 1, "channels": 4, "max_channels": 16, "downsample_scales": [4]},
                "stft": {"n_fft": 128, "hop_length": 32, "channels": 2},
            }
        },
        valid_interval=3,
        log_interval=1,
        keep_nbest_models=1,
    )
    conf.update(overrides)
    return conf


def _dump_data(root: Path) -> dict[str, Path]:
    """The ``dumped`` fixture of test/conftest.py: 6 train + 2 valid bundled utterances."""
    from codectk.bin import dump_wav
    from codectk.io.datadir import read_scp, subset_data_dir
    from test.conftest import bundled_flacs

    files = bundled_flacs()[:8]
    src = root / "src"
    src.mkdir(parents=True)
    (src / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in files))
    (src / "utt2spk").write_text("".join(f"{f.stem} {f.stem.split('-')[0]}\n" for f in files))
    args = ["--fs", "16000", "--in_scp", str(src / "wav.scp")]
    dump_wav.main([*args, "--out_wav_dir", str(root / "data"), "--out_dir", str(src)])
    utts = list(read_scp(src / "wav.scp"))
    out = {}
    for name, sub in (("train", utts[:6]), ("valid", utts[6:])):
        subset_data_dir(src, root / name, sub)
        (root / name / "fs").write_text("16000\n")
        out[name] = root / name
    return out


def write_fixture(out: Path, work: Path = Path("/tmp/codectk_old_checkpoint")) -> None:
    """Write the two fixture files into ``out`` (``work``: scratch folder, replaced)."""
    from codectk.config import build_train_config
    from codectk.train.trainer import Trainer

    torch.set_num_threads(1)
    shutil.rmtree(work, ignore_errors=True)
    data = _dump_data(work)
    conf3 = build_train_config(small_conf(max_steps=3))
    Trainer(conf3, work / "a", data["train"], data["valid"]).run()
    t = Trainer(build_train_config(small_conf(max_steps=6)), work / "b", *data.values())
    t.run()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "a" / "checkpoint.pt", out / "checkpoint_step3.pt")
    shutil.copy(work / "a" / "3steps.pt", out / "3steps.pt")
    weights = {"codec": t.codec.state_dict(), "discriminator": t.disc.state_dict()}
    torch.save(weights, out / "weights_step6.pt")
