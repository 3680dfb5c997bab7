"""The table over bitrates (codectk.bin.bitrate_table) from real stage-7 summaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codectk.bin import bitrate_table
from codectk.eval.score import score
from codectk.io.audio import write_audio
from codectk.io.datadir import write_scp
from codectk.metrics.align import shift
from test.metrics.conftest import bundled


def _scores(tmp_path: Path, kbps: float, snr_db: float) -> Path:
    """Two bundled utterances (3 s) 2 ms late with noise at ``snr_db``, scored at ``kbps``."""
    refs, degs = {}, {}
    for i, utt in enumerate(("1183-124566-0000", "1363-135842-0000")):
        x, fs = bundled(utt)
        x = x[: 3 * fs]
        noise = np.random.default_rng(i).standard_normal(x.size)
        y = shift(x, 32) + noise * np.sqrt(np.var(x) / 10 ** (snr_db / 10))  # x has a DC offset
        write_audio(tmp_path / f"{kbps}/{utt}.wav", y, fs, subtype="FLOAT")
        refs[utt] = str(tmp_path / f"ref/{utt}.wav")
        write_audio(refs[utt], x, fs, subtype="FLOAT")
        degs[utt] = str(tmp_path / f"{kbps}/{utt}.wav")
    write_scp(tmp_path / "ref.scp", refs)
    write_scp(tmp_path / f"{kbps}.scp", degs)
    out = tmp_path / f"scores_{kbps}"
    score(tmp_path / "ref.scp", tmp_path / f"{kbps}.scp", out, ["stoi", "si_sdr"],
          bitrate_kbps=kbps, max_delay_ms=10)  # fmt: skip
    return out


def test_table_over_bitrates(tmp_path: Path, capsys):
    high, low = _scores(tmp_path, 6.0, 20.0), _scores(tmp_path, 1.5, 5.0)
    assert bitrate_table.main([str(high), str(low), "--out", str(tmp_path / "t")]) == 0
    rows = [r.split("\t") for r in (tmp_path / "t.tsv").read_text().splitlines()]
    assert rows[0] == [
        "bitrate_kbps", "n_utts", "stoi_mean", "stoi_ci95", "si_sdr_mean", "si_sdr_ci95",
        "delay_ms", "codebook_utilisation",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ["1.5", "6"]  # sorted by bitrate
    table = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert float(table["6"]["si_sdr_mean"]) == pytest.approx(20, abs=0.5)
    assert float(table["1.5"]["si_sdr_mean"]) == pytest.approx(5, abs=0.5)
    assert float(table["6"]["delay_ms"]) == pytest.approx(2.0, abs=0.01)  # 32 samples
    assert table["6"]["codebook_utilisation"] == "-"
    assert capsys.readouterr().out == (tmp_path / "t.txt").read_text()


def test_pooled_error_rates_get_their_own_columns(tmp_path: Path):
    summary = json.loads((_scores(tmp_path, 3.0, 10.0) / "summary.json").read_text())
    summary["metrics"].append("wer")  # as score() writes WER: mean, ci95 and pooled
    summary["wer"] = {"mean": 0.5, "ci95": 0.1, "n": 2, "n_nan": 0, "pooled": 0.4}
    header, rows = bitrate_table.bitrate_rows([summary])
    assert header[-5:] == ["wer_mean", "wer_ci95", "wer_pooled", "delay_ms", "codebook_utilisation"]
    assert rows[0][-5:-2] == ["0.5", "0.1", "0.4"]
