"""The rate-distortion report, the MUSHRA stimuli and page, and MUSHRA scoring."""

from __future__ import annotations

import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from codectk.bin import mushra_scores
from codectk.bin import report as report_bin
from codectk.report import mushra
from codectk.report.build import ReportError, pick_utts
from codectk.report.mushra_stats import (
    MushraCsvError,
    read_ratings,
    screen_listeners,
    system_scores,
)
from codectk.report.rd import experiment_points, kbps_ticks
from test.report.conftest import HAVE_ANCHOR_TOOLS

needs_tools = pytest.mark.skipif(not HAVE_ANCHOR_TOOLS, reason="opus-tools or codec2 not installed")


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if (tag, k) in (("img", "src"), ("audio", "src"), ("a", "href")):
                self.refs.append(v)


def test_report_files(report: Path):
    n_points = 3 + (3 if HAVE_ANCHOR_TOOLS else 0)
    rows = (report / "rd_test.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:5] == ["system", "kind", "point", "kbps", "n_utts"]
    assert "pesq_mean" in rows[0] and "si_sdr_ci95" in rows[0]
    table = {r.split("\t")[2]: r.split("\t") for r in rows[1:]}
    assert len(table) == n_points
    assert [
        table[p][3] for p in ("codec_multi_1.5kbps", "codec_multi_6kbps", "codec_single_3kbps")
    ] == ["1.5", "6", "3"]
    # The fake experiment at 20 dB SNR beats itself at 5 dB SNR on SI-SDR (about 20 vs 5 dB).
    col = rows[0].split("\t").index("si_sdr_mean")
    assert float(table["codec_multi_6kbps"][col]) == pytest.approx(20, abs=1.5)
    assert float(table["codec_multi_1.5kbps"][col]) == pytest.approx(5, abs=1.5)
    md = (report / "rd_test.md").read_text().splitlines()
    assert md[0].startswith("| system | kbps | pesq |") and len(md) == 2 + n_points
    for png in (
        "plots/rd_test.png",
        "plots/rd_test_pesq.png",
        "plots/rd_test_stoi.png",
        "plots/rd_test_mel_distance.png",
        "plots/rd_test_si_sdr.png",
        "plots/rd_test_visqol.png",
    ):
        assert sf_png_size(report / png) > (300, 200), png
    specs = sorted((report / "spectrograms/test").glob("*.png"))
    assert len(specs) == 2
    # Every link of index.html is relative and resolves inside the report.
    parser = _Refs()
    parser.feed((report / "index.html").read_text())
    assert len([r for r in parser.refs if r.endswith(".wav")]) == 2 * (1 + n_points)
    for ref in parser.refs:
        assert not ref.startswith(("/", "http")), ref
        assert (report / ref).resolve().is_file(), ref
        assert (report / ref).resolve().is_relative_to(report.resolve())


def test_rate_table_html_units_directions_and_delay(report: Path):
    html = (report / "index.html").read_text()
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert "pesq ↑<br><small>MOS-LQO</small>" in head
    assert "mel_distance ↓<br><small>log10</small>" in head and "visqol ↑" in head
    assert "delay<br><small>ms</small>" in head
    rows = html[html.index("<tbody>") : html.index("</tbody>")].split("<tr>")[1:]
    models = [r for r in rows if "<td>model</td>" in r]
    assert len(models) == 3 and all(r.endswith('<td class="num">-</td></tr>') for r in models)
    if HAVE_ANCHOR_TOOLS:  # anchors are compensated: Codec 2 by about 20 ms
        codec2 = next(r for r in rows if r.startswith("<td>codec2</td>"))
        delay = float(re.findall(r'<td class="num">([-0-9.]+)</td>', codec2)[-1])
        assert 15 < delay < 25, codec2


def test_kbps_ticks_are_the_measured_bitrates():
    """A 1.6 kbps point gets a 1.6 tick (not the 1.5 of a fixed list); ticks closer than
    12% are thinned; rates show 3 significant digits."""
    assert kbps_ticks([1.6, 3.2, 6.0]) == [1.6, 3.2, 6.0]
    assert kbps_ticks([6.49109, 6.0, 24.3, 1.20367, 1.6]) == [1.2, 1.6, 6.0, 24.3]
    assert kbps_ticks([]) == []


def sf_png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_mushra_page_config(report: Path):
    text = (report / "mushra.html").read_text()
    assert "http" not in re.sub(r"<p>.*?</p>", "", text, flags=re.S).replace("http-equiv", "")
    config = json.loads(re.search(r'id="mushra-config">(.*?)</script>', text, re.S).group(1))
    assert len(config["trials"]) == 2
    for trial in config["trials"]:
        systems = [s["system"] for s in trial["stimuli"]]
        assert systems.count("hidden_reference") == 1 and systems.count("anchor_lp3.5kHz") == 1
        assert len(systems) == len(set(systems)) == 2 + 3 + (3 if HAVE_ANCHOR_TOOLS else 0)
        ref, fs = sf.read(report / trial["reference"])
        for s in trial["stimuli"]:
            y, fs_s = sf.read(report / s["src"])
            assert fs_s == fs and y.shape == ref.shape
            assert re.fullmatch(r"mushra/test/trial\d\d/s\d\d\.wav", s["src"])  # names hide systems
            if s["system"] == "hidden_reference":
                np.testing.assert_array_equal(y, ref)


def test_lowpass_anchor():
    fs = 16000
    x = np.random.default_rng(0).standard_normal(fs * 2).astype(np.float32)
    y = mushra.lowpass(x, fs)
    f, px = welch(x, fs, nperseg=1024)
    _, py = welch(y, fs, nperseg=1024)
    gain = 10 * np.log10(py / px)
    assert np.all(np.abs(gain[f < 3200]) < 0.5)  # pass band
    assert np.all(gain[f > 3800] < -45)  # stop band
    i = np.argmin(np.abs(f - 3500))
    assert -8 < gain[i] < -4  # -6 dB at the cutoff
    # Zero delay: a click stays where it was.
    click = np.zeros(4001, np.float32)
    click[2000] = 1
    assert int(np.argmax(mushra.lowpass(click, fs))) == 2000
    with pytest.raises(ValueError, match="must lie in"):
        mushra.lowpass(x, 6000)


CSV = """listener,session,seed,trial,utt,system,label,score
alice,s,1,1,u1,hidden_reference,A,100
alice,s,1,1,u1,anchor_lp3.5kHz,B,20
alice,s,1,1,u1,codec_a,C,60
alice,s,1,2,u2,hidden_reference,B,95
alice,s,1,2,u2,anchor_lp3.5kHz,A,10
alice,s,1,2,u2,codec_a,C,70
bob,s,2,1,u2,hidden_reference,C,80
bob,s,2,1,u2,anchor_lp3.5kHz,A,30
bob,s,2,1,u2,codec_a,B,100
bob,s,2,2,u1,hidden_reference,A,100
bob,s,2,2,u1,anchor_lp3.5kHz,B,25
bob,s,2,2,u1,codec_a,C,50
"""


def test_mushra_scores_known_csv(tmp_path: Path, capsys):
    path = tmp_path / "answers.csv"
    path.write_text(CSV)
    ratings = read_ratings([path])
    scores = system_scores(ratings)
    assert list(scores) == ["hidden_reference", "codec_a", "anchor_lp3.5kHz"]
    # codec_a: 60 70 100 50 -> mean 70, s = sqrt(((-10)^2 + 0 + 30^2 + (-20)^2) / 3) = 21.60,
    # t(0.975, 3) = 3.1824 -> CI = 3.1824 * 21.60 / 2 = 34.37
    assert scores["codec_a"]["mean"] == pytest.approx(70)
    assert scores["codec_a"]["ci95"] == pytest.approx(3.182446 * math.sqrt(1400 / 3) / 2, rel=1e-5)
    assert scores["codec_a"]["n"] == 4 and scores["codec_a"]["n_listeners"] == 2
    # bob's hidden reference is below 90 in 1 of 2 trials (50% > 15%): excluded.
    assert screen_listeners(ratings) == {"bob": 0.5}
    out = tmp_path / "scores.json"
    assert mushra_scores.main([str(path), "--post_screening", "true", "--out_json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "excluded by post-screening: bob" in text
    doc = json.loads(out.read_text())
    assert doc["excluded"] == {"bob": 0.5}
    assert (
        doc["systems"]["codec_a"]["mean"] == pytest.approx(65)
        and doc["systems"]["codec_a"]["n"] == 2
    )


def test_mushra_csv_errors(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("listener,utt,system,score\nx,u,s,1\n")
    with pytest.raises(MushraCsvError, match=r"bad.csv:1: missing column\(s\) \['trial'\]"):
        read_ratings([bad])
    bad.write_text("listener,trial,utt,system,score\nx,1,u,s,101\n")
    with pytest.raises(MushraCsvError, match=r"bad.csv:2: score 101.0 outside \[0, 100\]"):
        read_ratings([bad])
    bad.write_text("listener,trial,utt,system,score\nx,1,u,s,1\nx,2,u,s,2\n")
    with pytest.raises(MushraCsvError, match=r"bad.csv:3: listener 'x' rated 's' on 'u' again"):
        read_ratings([bad])


def test_experiment_points_and_errors(eval_tree: Path, tmp_path: Path):
    pts = experiment_points(eval_tree / "exp/codec_multi", "test")
    assert [(p.name, p.kbps) for p in pts] == [
        ("codec_multi_1.5kbps", 1.5),
        ("codec_multi_6kbps", 6.0),
    ]
    with pytest.raises(ValueError, match="no scores/test_x/summary.json"):
        experiment_points(eval_tree / "exp/codec_multi", "test", "_x")
    assert pick_utts([f"u{i}" for i in range(10)], 3) == ["u0", "u4", "u9"]
    (tmp_path / "exp/codec_none").mkdir(parents=True)
    args = [
        "--exp_dirs",
        str(tmp_path / "exp/codec_none"),
        "--sets",
        "test",
        "--out_dir",
        str(tmp_path / "r"),
    ]
    with pytest.raises(ReportError, match="codec_none: no scores/test/summary.json"):
        report_bin.main(args)


@needs_tools
def test_scored_anchors_rank_by_bitrate(eval_tree: Path):
    """The session's anchors (3 s of 2 utterances): more bits, better PESQ and mel distance."""
    summaries = {
        d: json.loads((eval_tree / "exp/anchors" / d / "scores/test/summary.json").read_text())
        for d in ("opus_6", "opus_24", "codec2_2.4")
    }
    assert summaries["opus_24"]["pesq"]["mean"] > summaries["opus_6"]["pesq"]["mean"] > 1.5
    assert (
        summaries["opus_24"]["mel_distance"]["mean"] < summaries["opus_6"]["mel_distance"]["mean"]
    )
    assert summaries["codec2_2.4"]["bitrate_kbps"] == pytest.approx(2.4, rel=0.01)
    assert os.path.isfile(eval_tree / "exp/anchors/opus_6/decode_test/anchor.json")
