"""Stages 1-4 entry points on the bundled real speech."""

import json
from pathlib import Path

import pytest
import soundfile as sf

from codectk.bin import (
    collect_stats,
    dump_wav,
    filter_length,
    prepare_librispeech,
    split_by_speaker,
)
from codectk.io.datadir import read_scp, validate_data_dir, write_scp
from test.conftest import CORPUS


def test_prepare_and_split(tmp_path: Path):
    prepare_librispeech.main(
        [
            "--corpus_dir",
            str(CORPUS),
            "--parts",
            "train-clean-100",
            "--out_dir",
            str(tmp_path / "all"),
        ]
    )
    assert validate_data_dir(tmp_path / "all") == []
    assert len(read_scp(tmp_path / "all" / "wav.scp")) == 70
    outs = [f"{tmp_path}/test:6", f"{tmp_path}/valid:4", f"{tmp_path}/train:rest"]
    split_by_speaker.main([str(tmp_path / "all"), *outs])
    spk = {n: set(read_scp(tmp_path / n / "utt2spk").values()) for n in ("train", "valid", "test")}
    assert (len(spk["test"]), len(spk["valid"]), len(spk["train"])) == (6, 4, 60)
    assert not (spk["test"] & spk["train"]) and not (spk["valid"] & spk["train"])
    genders = read_scp(tmp_path / "test" / "spk2gender")
    assert sorted(genders.values()) == ["f", "f", "f", "m", "m", "m"]
    for n in ("train", "valid", "test"):
        assert validate_data_dir(tmp_path / n) == []


def test_split_too_many_speakers(tmp_path: Path, small_datadir: Path):
    with pytest.raises(ValueError, match="only 4 exist"):
        split_by_speaker.main([str(small_datadir), f"{tmp_path}/a:5"])


def test_dump_resamples_and_is_idempotent(tmp_path: Path, small_datadir: Path):
    args = [
        "--fs",
        "24000",
        "--in_scp",
        str(small_datadir / "wav.scp"),
        "--out_wav_dir",
        str(tmp_path / "wav"),
        "--out_dir",
        str(tmp_path / "out"),
    ]
    dump_wav.main(args)
    wav = read_scp(tmp_path / "out" / "wav.scp")
    lens = read_scp(tmp_path / "out" / "utt2num_samples")
    src = read_scp(small_datadir / "wav.scp")
    for utt, path in wav.items():
        info = sf.info(path)
        assert info.samplerate == 24000 and info.channels == 1
        assert int(lens[utt]) == info.frames == round(sf.info(src[utt]).frames * 1.5)
    mtimes = {p: Path(p).stat().st_mtime_ns for p in wav.values()}
    dump_wav.main(args)
    assert {p: Path(p).stat().st_mtime_ns for p in wav.values()} == mtimes


def test_dump_names_bad_line(tmp_path: Path, small_datadir: Path):
    scp = tmp_path / "wav.scp"
    table = read_scp(small_datadir / "wav.scp")
    table["zz-missing"] = str(tmp_path / "nope.flac")
    write_scp(scp, table)
    with pytest.raises(Exception, match=r"nope.flac .*wav.scp:5"):
        dump_wav.main(
            [
                "--fs",
                "16000",
                "--in_scp",
                str(scp),
                "--out_wav_dir",
                str(tmp_path / "w"),
                "--out_dir",
                str(tmp_path / "o"),
            ]
        )


def _dumped(tmp_path: Path, small_datadir: Path) -> Path:
    d = tmp_path / "dump"
    dump_wav.main(
        [
            "--fs",
            "16000",
            "--in_scp",
            str(small_datadir / "wav.scp"),
            "--out_wav_dir",
            str(d / "data"),
            "--out_dir",
            str(d),
        ]
    )
    for f in ("utt2spk", "spk2utt"):
        (d / f).write_text((small_datadir / f).read_text())
    return d


def test_filter_length_and_stats(tmp_path: Path, small_datadir: Path):
    d = _dumped(tmp_path, small_datadir)
    lens = {u: int(n) / 16000 for u, n in read_scp(d / "utt2num_samples").items()}
    cut = sorted(lens.values())[1] + 0.01
    filter_length.main(
        ["--fs", "16000", "--max_wav_duration", str(cut), str(d), str(tmp_path / "f")]
    )
    kept = read_scp(tmp_path / "f" / "wav.scp")
    assert set(kept) == {u for u, s in lens.items() if s <= cut}
    assert len((tmp_path / "f" / "dropped").read_text().splitlines()) == 2
    assert validate_data_dir(tmp_path / "f") == []
    with pytest.raises(ValueError, match="no utterance"):
        filter_length.main(
            ["--fs", "16000", "--min_wav_duration", "100", str(d), str(tmp_path / "g")]
        )
    collect_stats.main(["--fs", "16000", str(d), str(tmp_path / "stats")])
    stats = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert stats["n_utts"] == 4
    assert stats["total_duration_s"] == pytest.approx(sum(lens.values()))
    assert -40 < stats["rms_dbfs_mean"] < -10
