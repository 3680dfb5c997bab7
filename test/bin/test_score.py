"""Stage 7 scoring CLI on real speech (the bundled python-pesq utterance) with noise."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from codectk.bin.score import main
from codectk.eval.score import score
from codectk.io.codes import write_codes

DATA = Path(__file__).parents[1] / "data" / "pesq"
SNR_DB = {"spk-B-02": 20.0, "spk-a-01": 10.0, "spk-a-03": 15.0}  # keys in LC_ALL=C order
COLUMNS = ["utt", "pesq", "stoi", "estoi", "mel_distance", "stft_distance", "si_sdr"]


def _make_sets(tmp_path: Path, short_utt: bool = False) -> tuple[Path, Path, Path]:
    """Write ref/deg wav.scp for 3 utterances cut from speech.wav, deg = ref + noise.

    spk-B-02's decoded wav is at 24 kHz (resampled by scoring); spk-a-03's is 5% longer
    (trimmed). Also writes codes (K=4, codebook_size=16, 75 Hz: 1.2 kbps).
    """
    speech, fs = sf.read(DATA / "speech.wav")
    cuts = {"spk-a-01": speech, "spk-a-03": speech[:24000], "spk-B-02": speech[20000:]}
    if short_utt:
        cuts["spk-a-04"] = speech[10000:13200]  # 0.2 s: too short for PESQ
        snrs = {**SNR_DB, "spk-a-04": 10.0}
    else:
        snrs = SNR_DB
    rng = np.random.default_rng(0)
    ref_lines, deg_lines, codes = [], [], {}
    for utt, x in cuts.items():
        x = x - x.mean()
        noise = rng.standard_normal(x.size)
        deg = x + noise * np.sqrt(np.sum(x**2) / np.sum(noise**2) / 10 ** (snrs[utt] / 10))
        deg_fs = fs
        if utt == "spk-B-02":
            deg, deg_fs = soxr.resample(deg, fs, 24000), 24000
        if utt == "spk-a-03":
            deg = np.concatenate([deg, np.zeros(x.size // 20)])
        sf.write(tmp_path / f"{utt}.wav", x, fs, subtype="FLOAT")
        sf.write(tmp_path / f"{utt}_deg.wav", deg, deg_fs, subtype="FLOAT")
        ref_lines.append(f"{utt} {tmp_path / f'{utt}.wav'}\n")
        deg_lines.append(f"{utt} {tmp_path / f'{utt}_deg.wav'}\n")
        codes[utt] = rng.integers(0, 16, size=(4, 1 + x.size // 213))
    (tmp_path / "ref.scp").write_text("".join(reversed(ref_lines)))
    (tmp_path / "deg.scp").write_text("".join(deg_lines))
    write_codes(tmp_path / "codes", codes, codebook_size=16, frame_rate=75.0, sample_rate=16000)
    return tmp_path / "ref.scp", tmp_path / "deg.scp", tmp_path / "codes.scp"


def _read_tsv(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    rows = {}
    for line in lines[1:]:
        utt, *values = line.split("\t")
        rows[utt] = dict(zip(header[1:], map(float, values)))
    return header, rows


def test_score_cli_writes_tables(tmp_path, capsys):
    ref_scp, deg_scp, codes_scp = _make_sets(tmp_path)
    out = tmp_path / "scores" / "test"
    argv = ["--ref_scp", str(ref_scp), "--deg_scp", str(deg_scp), "--out_dir", str(out)]
    argv += ["--codes_scp", str(codes_scp), "--bitrate_kbps", "1.2"]
    argv += ["--metrics", ",".join(COLUMNS[1:])]  # the model-based ones: test/eval, test/metrics
    assert main(argv) == 0
    captured = capsys.readouterr()  # main logs to stderr, prints summary.txt to stdout
    assert "24000 Hz resampled to the reference 16000 Hz" in captured.err
    assert "spk-a-03: lengths differ by more than 1%" in captured.err
    assert f"read 3 utterances: ref {ref_scp}" in captured.err
    assert f"wrote {out / 'per_utt.tsv'}" in captured.err

    header, rows = _read_tsv(out / "per_utt.tsv")
    assert header == COLUMNS
    assert list(rows) == sorted(SNR_DB)  # LC_ALL=C: "spk-B" before "spk-a"
    for utt, snr in SNR_DB.items():
        r = rows[utt]
        assert r["si_sdr"] == pytest.approx(snr, abs=0.3), utt
        assert 1.0 < r["pesq"] < 4.64 and 0.7 < r["stoi"] < 1.0 and 0.4 < r["estoi"] < r["stoi"]
        assert 0.0 < r["mel_distance"] < 2.0 and 0.0 < r["stft_distance"] < 5.0
    assert rows["spk-B-02"]["pesq"] > rows["spk-a-01"]["pesq"]  # 20 dB vs 10 dB SNR

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_utts"] == 3 and summary["bitrate_kbps"] == 1.2
    assert summary["metrics"] == COLUMNS[1:]
    for name in COLUMNS[1:]:
        s = summary[name]
        assert s["n"] == 3 and s["n_nan"] == 0 and s["ci95"] > 0
        assert s["mean"] == pytest.approx(np.mean([r[name] for r in rows.values()]), rel=1e-5)
    assert summary["si_sdr"]["mean"] == pytest.approx(15.0, abs=0.3)
    cu = summary["codebook_usage"]
    assert cu["n_codebooks"] == 4 and cu["codebook_size"] == 16
    assert cu["codes_bitrate_kbps"] == pytest.approx(1.2)
    assert len(cu["per_codebook"]) == 4
    for row in cu["per_codebook"]:  # uniform random codes: close to log2(16) = 4 bits
        assert 3.5 < row["entropy_bits"] <= 4.0 and row["utilisation"] == row["entropy_bits"] / 4
    assert cu["mean_over_codebooks"]["fraction_used"] == 1.0

    text = (out / "summary.txt").read_text()
    assert captured.out == text
    for name in COLUMNS[1:]:
        assert f"\n{name} " in text
    assert "codebook usage:" in text and "\nmean " in text
    assert text.endswith("nominal bitrate: 1.2 kbps\n")


def test_missing_utterance_is_an_error_naming_it(tmp_path, capsys):
    ref_scp, deg_scp, _ = _make_sets(tmp_path)
    lines = deg_scp.read_text().splitlines()
    short = tmp_path / "deg_short.scp"
    short.write_text("\n".join(line for line in lines if not line.startswith("spk-a-03")) + "\n")
    with pytest.raises(ValueError, match=r"1 of 3 utterance\(s\) of .*ref\.scp missing from "):
        score(ref_scp, short, tmp_path / "out", ["pesq"])
    argv = ["--ref_scp", str(ref_scp), "--deg_scp", str(short), "--out_dir", str(tmp_path)]
    assert main(argv) == 1
    assert f"missing from {short}: spk-a-03" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_parallel_cli_counts_nan_and_matches_serial(tmp_path, capsys):
    ref_scp, deg_scp, _ = _make_sets(tmp_path, short_utt=True)
    summary = score(ref_scp, deg_scp, tmp_path / "serial", metrics=["pesq", "si_sdr"])
    assert summary["pesq"]["n"] == 3 and summary["pesq"]["n_nan"] == 1
    assert summary["si_sdr"]["n"] == 4 and summary["si_sdr"]["n_nan"] == 0
    assert summary["bitrate_kbps"] is None
    argv = ["--ref_scp", str(ref_scp), "--deg_scp", str(deg_scp)]
    argv += ["--out_dir", str(tmp_path / "par"), "--metrics", "pesq,si_sdr", "--nj", "2"]
    assert main(argv) == 0  # two spawned worker processes
    captured = capsys.readouterr()
    assert "spk-a-04: pesq could not be computed (NaN)" in captured.err
    assert "pesq" in captured.out and "3 (+1 NaN)" in captured.out
    assert "not given" in captured.out
    header, par = _read_tsv(tmp_path / "par" / "per_utt.tsv")
    assert header == ["utt", "pesq", "si_sdr"]
    _, ser = _read_tsv(tmp_path / "serial" / "per_utt.tsv")
    assert math.isnan(par["spk-a-04"]["pesq"]) and math.isnan(ser["spk-a-04"]["pesq"])
    assert "spk-a-04\tnan\t" in (tmp_path / "par" / "per_utt.tsv").read_text()
    for utt in SNR_DB:
        assert par[utt] == pytest.approx(ser[utt], rel=1e-5)
    saved = json.loads((tmp_path / "par" / "summary.json").read_text())
    assert saved["pesq"]["n_nan"] == 1 and saved["bitrate_kbps"] is None


def test_score_bundled_librispeech_orders_noise_levels(tmp_path, flacs):
    """Three real LibriSpeech utterances (the bundled corpus, read from FLAC as the
    recipe's wav.scp would) with noise at 5, 15 and 25 dB SNR."""
    short = sorted(flacs, key=lambda f: sf.info(f).frames)[:3]
    snrs = dict(zip((f.stem for f in short), (5.0, 15.0, 25.0)))
    rng = np.random.default_rng(1)
    ref_scp, deg_scp = tmp_path / "ref.scp", tmp_path / "deg.scp"
    for f in short:
        x, fs = sf.read(f)
        noise = rng.standard_normal(x.size)
        gain = np.sqrt(np.var(x) / np.var(noise) / 10 ** (snrs[f.stem] / 10))
        sf.write(tmp_path / f"{f.stem}.wav", x + gain * noise, fs, subtype="FLOAT")
        with open(ref_scp, "a") as r, open(deg_scp, "a") as d:
            r.write(f"{f.stem} {f}\n")
            d.write(f"{f.stem} {tmp_path / f'{f.stem}.wav'}\n")
    summary = score(ref_scp, deg_scp, tmp_path / "out", metrics=["pesq", "stoi", "si_sdr"])
    assert summary["n_utts"] == 3
    _, rows = _read_tsv(tmp_path / "out" / "per_utt.tsv")
    by_snr = [rows[u] for u in sorted(snrs, key=snrs.get)]
    for row, snr in zip(by_snr, sorted(snrs.values())):
        assert row["si_sdr"] == pytest.approx(snr, abs=0.1)
    assert by_snr[0]["pesq"] < by_snr[1]["pesq"] < by_snr[2]["pesq"]
    assert by_snr[0]["stoi"] < by_snr[1]["stoi"] < by_snr[2]["stoi"] < 1.0
