"""Stage 7 report: rate-distortion tables and plots, spectrograms, an HTML page with
audio players and a MUSHRA listening test, over experiments and anchors.

Usage (from the recipe folder, where stage 7 ran)::

    python -m codectk.bin.report --exp_dirs exp/codec_a [exp/codec_b ...] \\
        --anchors_dir exp/anchors --sets test --out_dir exp/codec_a/report \\
        [--n_utts 3] [--mushra_utts 3] [--mushra_systems "codec_a_1.5kbps opus_6"]

Reads every ``scores/<set>[_<kbps>kbps]/summary.json`` of the experiments and
``<anchors_dir>/*/scores/<set>/summary.json`` (codectk/report/rd.py) and writes to
``out_dir``:

* ``rd_<set>.{tsv,md}``: a row per system and bitrate, metric means and 95% CIs;
* ``plots/rd_<set>.png`` (PESQ, STOI, mel distance, SI-SDR against kbps, a line per
  experiment and anchor) and ``plots/rd_<set>_<metric>.png``;
* ``spectrograms/<set>/<utt>.png`` for ``--n_utts`` utterances (evenly spread over the
  sorted list) and their audio, copied to ``audio/<set>/<point>/<utt>.wav``;
* ``index.html``: tables, plots, spectrograms and players (relative paths);
* ``mushra.html`` and ``mushra/``: the listening test on the first set (hidden
  reference, 3.5 kHz low-pass anchor and each point of ``--mushra_systems``, default
  all), see codectk/report/mushra.py.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from codectk.bin.common import parser, run
from codectk.errors import CodectkError
from codectk.io.audio import read_audio, resample, to_mono, write_audio
from codectk.io.datadir import read_scp
from codectk.log import setup_logging, timed
from codectk.report import html, mushra, rd, spectrogram

log = logging.getLogger("codectk.bin.report")


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


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--exp_dirs", nargs="+", required=True, help="experiment folders")
    p.add_argument("--anchors_dir", default=None, help="anchors root (codectk.bin.anchors)")
    p.add_argument("--sets", nargs="+", required=True, help="test set names")
    p.add_argument("--out_dir", required=True, help="report folder")
    p.add_argument("--n_utts", type=int, default=3, help="utterances with spectrograms and players")
    p.add_argument(
        "--mushra_utts",
        type=int,
        default=None,
        help="MUSHRA trials, <= --n_utts (default: --n_utts)",
    )
    p.add_argument(
        "--mushra_systems", default=None, help="comma or space list of point names (default: all)"
    )
    p.add_argument("--suffix", default="", help="inference-tag suffix of score folders (_<tag>)")
    p.add_argument("--title", default=None, help="page title (default: from the first experiment)")
    args = p.parse_args(argv)
    setup_logging()
    if args.n_utts < 1:
        p.error(f"--n_utts {args.n_utts} must be >= 1")
    if args.mushra_utts is not None and not 1 <= args.mushra_utts <= args.n_utts:
        p.error(f"--mushra_utts {args.mushra_utts} must be in [1, --n_utts={args.n_utts}]")
    out = Path(args.out_dir)
    title = args.title or f"codectk report: {Path(args.exp_dirs[0]).name}"
    for sub in ("audio", "spectrograms", "mushra", "plots"):  # no stale file of an older run
        shutil.rmtree(out / sub, ignore_errors=True)
    sections, mushra_page = [], None
    with timed(f"report {out}"):
        for i, set_name in enumerate(args.sets):
            try:
                points = [
                    pt
                    for e in args.exp_dirs
                    for pt in rd.experiment_points(e, set_name, args.suffix)
                ]
            except ValueError as exc:
                raise ReportError(str(exc)) from None
            if args.anchors_dir:
                anchors = rd.anchor_points(args.anchors_dir, set_name)
                if not anchors:
                    log.warning("no anchor scored on %s under %s", set_name, args.anchors_dir)
                points += anchors
            section, utts, _ = build_set(set_name, points, out, args.n_utts)
            sections.append(section)
            if i == 0:
                chosen = points
                if args.mushra_systems:
                    wanted = args.mushra_systems.replace(",", " ").split()
                    unknown = sorted(set(wanted) - {pt.name for pt in points})
                    if unknown:
                        p.error(
                            f"--mushra_systems {unknown} not found; points of {set_name}: "
                            f"{[pt.name for pt in points]}"
                        )
                    chosen = [pt for pt in points if pt.name in wanted]
                trials = pick_utts(utts, args.mushra_utts or len(utts))
                mushra_page = build_mushra(
                    out, set_name, chosen, trials, Path(args.exp_dirs[0]).name
                )
        index = html.write_index(out, sections, mushra_page, title)
    log.info("wrote %s and %s", index, mushra_page)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
