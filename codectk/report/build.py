"""Building a stage-7 report's pieces: per set, the rate-distortion tables and plots,
spectrograms and audio copies of a few utterances; the MUSHRA listening test's stimuli
and page. The command line is ``python -m codectk.bin.report`` (:mod:`codectk.bin.report`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from codectk.errors import CodectkError
from codectk.io.audio import read_audio, resample, to_mono, write_audio
from codectk.io.datadir import read_scp
from codectk.report import mushra, rd, spectrogram

log = logging.getLogger("codectk.report")


class ReportError(CodectkError, ValueError):
    """Missing inputs for a report; the message names them."""


def pick_utts(utts: list[str], n: int) -> list[str]:
    """``n`` utterances evenly spread over the ``LC_ALL=C``-sorted list (all if fewer)."""
    utts = sorted(utts, key=lambda u: u.encode())
    if n >= len(utts):
        return utts
    return [utts[int(i)] for i in np.linspace(0, len(utts) - 1, n).round()]


def _read(spec: str, where: str, fs: int | None = None) -> tuple[np.ndarray, int]:
    wav, rate = read_audio(spec, where)
    x = to_mono(wav)  # (C, T) -> (T,)
    if fs is not None and rate != fs:
        x, rate = resample(x, rate, fs), fs
    return x, rate


def _scp(path: Path, what: str) -> dict[str, str]:
    if not path.is_file():
        raise ReportError(
            f"{path}: not found ({what}); run the report from the folder where stage 7 ran"
        )
    return read_scp(path)


def build_set(
    set_name: str, points: list[rd.Point], out: Path, n_utts: int
) -> tuple[dict, list[str], int]:
    """Tables, plots, spectrograms and audio copies of one set.

    Returns:
        tuple: the set's section for :func:`codectk.report.html.write_index`, the chosen
        utterances and the reference sample rate.
    """
    ref_scp = points[0].ref_scp
    others = {str(p.ref_scp) for p in points} - {str(ref_scp)}
    if others:
        log.warning(
            "set %s: points scored against other references %s; using %s", set_name, others, ref_scp
        )
    refs = _scp(ref_scp, f"references of {points[0].score_dir}")
    degs = {p.name: _scp(p.deg_scp, f"decodings of {p.score_dir}") for p in points}
    tables = rd.write_tables(points, out / f"rd_{set_name}")
    plots = rd.plot_rd(points, out / "plots", set_name)
    utts = pick_utts([u for u in refs if all(u in d for d in degs.values())], n_utts)
    entries, fs = [], 0
    for utt in utts:
        ref, fs = _read(refs[utt], f"{ref_scp}: {utt}")
        ref_path = out / "audio" / set_name / "reference" / f"{utt}.wav"
        write_audio(ref_path, ref, fs)
        audio, rows = [("reference", ref_path)], [("reference", ref)]
        for p in points:
            y, _ = _read(degs[p.name][utt], f"{p.deg_scp}: {utt}", fs)
            path = out / "audio" / set_name / p.name / f"{utt}.wav"
            write_audio(path, y, fs)
            audio.append((p.label, path))
            rows.append((p.label, y))
        png = spectrogram.plot_comparison(
            rows,
            fs,
            f"{set_name}/{utt}: log-mel spectrograms",
            out / "spectrograms" / set_name / f"{utt}.png",
        )
        entries.append({"utt": utt, "spectrogram": png, "audio": audio})
    section = {"set": set_name, "points": points, "plots": plots, "tables": tables, "utts": entries}
    return section, utts, fs


def build_mushra(
    out: Path, set_name: str, points: list[rd.Point], utts: list[str], name: str
) -> Path:
    """Stimuli under ``out/mushra/<set>/`` and ``out/mushra.html``."""
    rng = np.random.default_rng(0)  # file names hide the systems; the page shuffles again
    trials = []
    for t, utt in enumerate(utts):
        ref_path = out / "audio" / set_name / "reference" / f"{utt}.wav"
        ref, fs = _read(str(ref_path), f"report reference {utt}")
        stimuli = [(mushra.HIDDEN_REFERENCE, ref), (mushra.LOWPASS_ANCHOR, mushra.lowpass(ref, fs))]
        for p in points:
            y, _ = _read(
                str(out / "audio" / set_name / p.name / f"{utt}.wav"), f"report {p.name} {utt}"
            )
            stimuli.append((p.name, y))
        folder = out / "mushra" / set_name / f"trial{t + 1:02d}"
        write_audio(folder / "reference.wav", ref, fs)
        items = []
        for k, i in enumerate(rng.permutation(len(stimuli))):
            system, wav = stimuli[i]
            path = folder / f"s{k + 1:02d}.wav"
            write_audio(path, wav, fs)
            items.append({"system": system, "src": path.relative_to(out).as_posix()})
        trials.append(
            {
                "utt": utt,
                "reference": (folder / "reference.wav").relative_to(out).as_posix(),
                "stimuli": items,
            }
        )
    if len(trials[0]["stimuli"]) > mushra.MAX_STIMULI:
        log.warning(
            "MUSHRA trials have %d stimuli; BS.1534-3 asks for at most %d (choose with "
            "--mushra_systems)",
            len(trials[0]["stimuli"]),
            mushra.MAX_STIMULI,
        )
    return mushra.write_page(out / "mushra.html", trials, name)


def collect_points(
    exp_dirs: list[str], set_name: str, suffix: str = "", anchors_dir: str | None = None
) -> list[rd.Point]:
    """Rate-distortion points of one set: every experiment's, then every anchor's under
    ``anchors_dir`` (a warning if none was scored on the set).

    Raises:
        ReportError: an experiment without scores of the set.
    """
    try:
        points = [pt for e in exp_dirs for pt in rd.experiment_points(e, set_name, suffix)]
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    if anchors_dir:
        anchors = rd.anchor_points(anchors_dir, set_name)
        if not anchors:
            log.warning("no anchor scored on %s under %s", set_name, anchors_dir)
        points += anchors
    return points
