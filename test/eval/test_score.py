"""Stage 7's scoring library (codectk.eval.score) with every metric on real speech:
delay compensation, the transcripts and the recogniser's cache, parallel workers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from codectk.eval.metrics import METRICS, columns
from codectk.eval.score import score
from codectk.io.audio import write_audio
from codectk.io.datadir import read_scp, write_scp
from codectk.metrics.align import shift
from codectk.metrics.asr import HypothesisCache
from test.metrics.conftest import bundled

UTTS = ("1183-124566-0000", "1363-135842-0000")


def _read_tsv(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    header, *lines = path.read_text().splitlines()
    cols = header.split("\t")
    return cols, {
        ln.split("\t")[0]: dict(zip(cols[1:], map(float, ln.split("\t")[1:]))) for ln in lines
    }


def _sets(tmp_path: Path, degrade, seconds: float | None = None) -> tuple[Path, Path]:
    refs, degs = {}, {}
    for i, utt in enumerate(UTTS):
        x, fs = bundled(utt)
        x = x if seconds is None else x[: int(seconds * fs)]
        write_audio(tmp_path / f"ref/{utt}.wav", x, fs, subtype="FLOAT")
        write_audio(tmp_path / f"deg/{utt}.wav", degrade(x, i), fs, subtype="FLOAT")
        refs[utt], degs[utt] = str(tmp_path / f"ref/{utt}.wav"), str(tmp_path / f"deg/{utt}.wav")
    write_scp(tmp_path / "ref.scp", refs)
    write_scp(tmp_path / "deg.scp", degs)
    return tmp_path / "ref.scp", tmp_path / "deg.scp"


def test_known_delay_is_found_recorded_and_removed(tmp_path: Path):
    """The decoded signals are the references 160.5 samples (10.03 ms) late: compensated,
    SI-SDR and STOI are those of an identical copy; not compensated, they are not."""
    ref_scp, deg_scp = _sets(tmp_path, lambda x, i: shift(x, 160.5), seconds=4)
    metrics = ["pesq", "stoi", "si_sdr"]
    on = score(ref_scp, deg_scp, tmp_path / "on", metrics, max_delay_ms=20)
    off = score(ref_scp, deg_scp, tmp_path / "off", metrics)
    header, rows = _read_tsv(tmp_path / "on/per_utt.tsv")
    assert header == ["utt", *metrics, "delay_ms"]
    for r in rows.values():
        assert r["delay_ms"] == pytest.approx(160.5 / 16, abs=0.002)
        assert r["si_sdr"] > 40 and r["stoi"] > 0.999
    assert on["delay"]["applied_to"] == ["stoi", "si_sdr"]
    assert on["delay"]["ms"]["mean"] == pytest.approx(10.03, abs=0.01)
    assert on["delay"]["max_delay_ms"] == 20
    assert off["si_sdr"]["mean"] < 10 < on["si_sdr"]["mean"]
    assert on["pesq"] == off["pesq"]  # PESQ aligns by itself: not compensated
    assert "delay" not in off and _read_tsv(tmp_path / "off/per_utt.tsv")[0][-1] == "si_sdr"
    text = (tmp_path / "on/summary.txt").read_text()
    assert "within ±20 ms): 10.031 ±" in text and "compensated before stoi, si_sdr" in text


def test_every_metric_with_transcripts_serial_and_parallel(tmp_path: Path):
    """All metrics on two 3 s utterances with noise at 20 dB SNR. The transcript of the
    first is the recogniser's own hypothesis of its reference (so wer_ref is 0 exactly),
    the second has none (its WER/CER are NaN). The recognised reference is taken from
    the cache. Two worker processes give the same STOI, WER, CER and hypotheses, and
    send theirs back to the cache."""

    def noisy(x, i):
        noise = np.random.default_rng(i).standard_normal(x.size).astype(np.float32)
        return x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 100)

    ref_scp, deg_scp = _sets(tmp_path, noisy, seconds=3)
    refs = read_scp(ref_scp)
    cache = HypothesisCache(tmp_path / "cache")
    x, fs = bundled(UTTS[0])
    hyp = cache.transcribe(x[: 3 * fs], fs)
    cache.save()
    (tmp_path / "text").write_text(f"{UTTS[0]} {hyp.upper()}\n")
    s = score(
        ref_scp, deg_scp, tmp_path / "serial", text=tmp_path / "text", cache_dir=tmp_path / "cache"
    )
    assert s["metric_names"] == list(METRICS) and s["metrics"] == columns(list(METRICS))
    header, rows = _read_tsv(tmp_path / "serial/per_utt.tsv")
    assert header == ["utt", *columns(list(METRICS))]
    first, second = rows[UTTS[0]], rows[UTTS[1]]
    assert first["wer_ref"] == 0 and first["cer_ref"] == 0
    assert first["wer_delta"] == first["wer"] and 0 <= first["wer"] <= 1
    assert all(math.isnan(second[c]) for c in columns(["wer", "cer"]))
    assert s["wer"]["n"] == 1 and s["wer"]["n_nan"] == 1
    assert s["wer"]["pooled"] == pytest.approx(first["wer"]) and s["wer_ref"]["pooled"] == 0
    for r in rows.values():  # 20 dB of white noise: mild for the intrusive metrics
        assert 2.0 < r["visqol"] < 5.0 and 0.6 < r["spk_sim"] < 1.0
        assert 1.0 < r["dnsmos_ovrl"] < r["dnsmos_sig"] <= 5.0
    asr_rows = (tmp_path / "serial/asr.tsv").read_text().splitlines()
    assert asr_rows[0] == "utt\ttext\thyp_ref\thyp_deg"
    assert asr_rows[1].startswith(f"{UTTS[0]}\t{hyp.upper()}\t{hyp}\t")
    assert asr_rows[2] == f"{UTTS[1]}\t\t\t"
    assert len((tmp_path / "cache/asr.tsv").read_text().splitlines()) == 2  # + decoded
    assert set(s["seconds"]) == {*METRICS, "total"}
    assert "wer            0..1     lower" in (tmp_path / "serial/summary.txt").read_text()

    # Two workers, with the metrics whose results travel back beyond their columns.
    names = ["stoi", "wer", "cer"]
    p = score(
        ref_scp, deg_scp, tmp_path / "par", names, text=tmp_path / "text", nj=2,
        cache_dir=tmp_path / "cache2",
    )  # fmt: skip
    _, par = _read_tsv(tmp_path / "par/per_utt.tsv")
    for utt in refs:
        for c in columns(names):
            assert par[utt][c] == pytest.approx(rows[utt][c], rel=1e-4, nan_ok=True), (utt, c)
    assert (tmp_path / "par/asr.tsv").read_text() == (tmp_path / "serial/asr.tsv").read_text()
    assert (tmp_path / "cache2/asr.tsv").read_text() == (tmp_path / "cache/asr.tsv").read_text()
    assert json.loads((tmp_path / "par/summary.json").read_text())["wer"]["n_nan"] == 1
    assert p["wer"]["pooled"] == s["wer"]["pooled"]
