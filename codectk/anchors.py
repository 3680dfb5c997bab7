"""Classical codec anchors for rate-distortion comparisons: Opus and Codec 2.

Every test set is encoded and decoded with the reference command-line tools of each
codec, and the actual bitrate is measured from the produced files:
``sum(bytes) * 8 / sum(duration)`` over the set, in kbps.

* **Opus** (RFC 6716; libopus through ``opusenc``/``opusdec`` of Debian's
  ``opus-tools``), default VBR at the target bitrate, 20 ms frames, complexity 10, Ogg
  container with no padding and no comments: the measured rate includes the Ogg pages
  and the two header packets (about 1-3 % at 6 kbps on 10 s utterances). opus-tools is
  used rather than ffmpeg because it is libopus's own front end (pre-skip and end
  trimming written into the file, so decoded audio is sample-aligned with the input),
  and a 200 KiB package instead of ffmpeg's ~100 MiB of libraries; ffmpeg's native
  ``opus`` encoder is CELT-only and not an anchor anyone reports.
* **Codec 2** (D. Rowe, https://www.rowetel.com/codec2.html; ``c2enc``/``c2dec`` of
  Debian's ``codec2``), 8 kHz mono 16-bit raw input: audio is resampled with soxr to
  8 kHz, zero-padded to whole frames, encoded to a headerless bit file, decoded and
  resampled back to the input rate. Modes 1200 (40 ms frames of 48 bits), 2400 (20 ms,
  48 bits) and 3200 (20 ms, 64 bits).

Both tools shift the decoded signal in time (Codec 2 by about 20 ms, Opus by a fraction
of a sample), so :func:`score_set` compensates the delay (``max_delay_ms``, found by
cross-correlation, :mod:`codectk.metrics.align`) before the sample-aligned metrics.

Layout written by :func:`decode_set` for anchor ``opus`` at 6 kbps on set ``test``::

    <anchors_dir>/opus_6/decode_test/{wav/<utt>.wav, wav.scp, utt2bytes, bitrate, anchor.json}
    <anchors_dir>/opus_6/scores/test/{per_utt.tsv, summary.json, summary.txt}  (score_set)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from codectk.errors import CodectkError, check_choice
from codectk.eval.metrics import METRICS, columns, default_metrics
from codectk.eval.score import score
from codectk.io.audio import read_audio, resample, to_mono, write_audio
from codectk.io.datadir import read_scp, write_scp
from codectk.io.fileio import atomic_write

log = logging.getLogger("codectk.anchors")

ANCHOR_FORMAT_VERSION = 1
MAX_DELAY_MS = 50.0  # delay search range of score_set; Codec 2's is about 20 ms


class AnchorError(CodectkError, RuntimeError):
    """A missing tool or a failed encode/decode; the message names the command."""


@dataclass(frozen=True)
class Anchor:
    """One classical codec family.

    Attributes:
        name (str): ``opus`` or ``codec2``.
        tools (tuple[str, ...]): commands it runs.
        package (str): the Debian package providing them.
        default_kbps (tuple[float, ...]): bitrates run by default, kbps.
        valid_kbps (tuple[float, ...] | None): the only bitrates the codec has (None: any
            in ``kbps_range``).
        kbps_range (tuple[float, float]): allowed bitrate range, kbps.
    """

    name: str
    tools: tuple[str, ...]
    package: str
    default_kbps: tuple[float, ...]
    valid_kbps: tuple[float, ...] | None
    kbps_range: tuple[float, float]

    def check_kbps(self, kbps: float) -> None:
        """Raise ValueError naming the allowed bitrates when ``kbps`` is not one."""
        if self.valid_kbps is not None and kbps not in self.valid_kbps:
            raise ValueError(
                f"{self.name} bitrate {kbps:g} kbps not supported; choose from "
                f"{[float(k) for k in self.valid_kbps]}"
            )
        lo, hi = self.kbps_range
        if not lo <= kbps <= hi:
            raise ValueError(f"{self.name} bitrate {kbps:g} kbps outside [{lo:g}, {hi:g}]")

    def check_tools(self) -> None:
        """Raise AnchorError naming the Debian package when a tool is not on PATH."""
        missing = [t for t in self.tools if shutil.which(t) is None]
        if missing:
            raise AnchorError(
                f"anchor {self.name}: {', '.join(missing)} not found on PATH; install the "
                f"Debian package '{self.package}' (bash tools/install_system_deps.sh)"
            )

    def version(self) -> str:
        """A string naming the tool version (recorded in ``anchor.json``)."""
        if self.name == "opus":
            out = _run(["opusenc", "--version"]).stdout.decode(errors="replace")
            return out.splitlines()[0].strip() if out else "opusenc"
        path = Path(shutil.which("c2enc") or "c2enc")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "?"
        return f"codec2 c2enc sha256:{digest}"

    def dirname(self, kbps: float) -> str:
        """Folder name under the anchors dir, e.g. ``opus_6`` or ``codec2_2.4``."""
        return f"{self.name}_{kbps:g}"

    def encode_decode(
        self, wav: np.ndarray, fs: int, kbps: float, work: Path
    ) -> tuple[np.ndarray, int]:
        """Encode and decode one waveform.

        Args:
            wav (np.ndarray): mono float32 in [-1, 1], shape (T,), at ``fs`` Hz.
            fs (int): sample rate in Hz.
            kbps (float): target bitrate in kbps.
            work (Path): an empty scratch folder.

        Returns:
            tuple: (decoded waveform, shape (T,), float32 at ``fs`` Hz; size in bytes of
            the compressed file).

        Raises:
            AnchorError: a tool failed (its stderr is quoted).
        """
        if self.name == "opus":
            return _opus(wav, fs, kbps, work)
        return _codec2(wav, fs, kbps, work)


ANCHORS: dict[str, Anchor] = {
    "opus": Anchor("opus", ("opusenc", "opusdec"), "opus-tools", (6, 8, 12, 24), None, (6, 256)),
    "codec2": Anchor(
        "codec2", ("c2enc", "c2dec"), "codec2", (1.2, 2.4, 3.2), (1.2, 2.4, 3.2), (1.2, 3.2)
    ),
}
CODEC2_FRAME_S = {1.2: 0.04, 2.4: 0.02, 3.2: 0.02}  # frame length per mode, seconds


def get_anchor(name: str) -> Anchor:
    """The anchor called ``name``.

    Raises:
        ValueError: unknown name, listing the valid ones.
    """
    check_choice("anchor", name, sorted(ANCHORS))
    return ANCHORS[name]


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, check=False)
    except FileNotFoundError:
        raise AnchorError(f"command not found: {cmd[0]}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-500:]
        raise AnchorError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {err}")
    return proc


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` (T',) to ``n`` samples."""
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def _opus(wav: np.ndarray, fs: int, kbps: float, work: Path) -> tuple[np.ndarray, int]:
    src, enc, dec = work / "in.wav", work / "out.opus", work / "dec.wav"
    sf.write(src, np.clip(wav, -1, 1), fs, subtype="PCM_16")
    _run(
        ["opusenc", "--quiet", "--bitrate", f"{kbps:g}", "--padding", "0", "--discard-comments"]
        + [str(src), str(enc)]
    )
    _run(["opusdec", "--quiet", "--rate", str(fs), str(enc), str(dec)])
    y, fs_out = sf.read(dec, dtype="float32", always_2d=True)
    if fs_out != fs:
        raise AnchorError(f"opusdec wrote {fs_out} Hz instead of {fs} Hz ({dec})")
    return _fit(y.mean(axis=1), wav.size), enc.stat().st_size


def _codec2(wav: np.ndarray, fs: int, kbps: float, work: Path) -> tuple[np.ndarray, int]:
    mode = str(int(round(kbps * 1000)))
    frame = int(round(CODEC2_FRAME_S[kbps] * 8000))  # samples per frame at 8 kHz
    x8 = resample(wav.astype(np.float32), fs, 8000)  # (T8,)
    x8 = np.pad(x8, (0, -x8.size % frame))  # whole frames: no speech left unencoded
    pcm = np.round(np.clip(x8, -1, 32767 / 32768) * 32768).astype("<i2")
    src, enc, dec = work / "in.raw", work / "out.bit", work / "dec.raw"
    src.write_bytes(pcm.tobytes())
    _run(["c2enc", mode, str(src), str(enc)])  # .bit: headerless
    _run(["c2dec", mode, str(enc), str(dec)])
    y8 = np.frombuffer(dec.read_bytes(), dtype="<i2").astype(np.float32) / 32768
    return _fit(resample(y8, 8000, fs), wav.size), enc.stat().st_size


def _stamp(anchor: Anchor, kbps: float, ref_scp: Path) -> dict:
    return {
        "format_version": ANCHOR_FORMAT_VERSION,
        "anchor": anchor.name,
        "nominal_kbps": float(kbps),
        "tool": anchor.version(),
        "ref_scp": str(ref_scp),
        "ref_scp_sha256": hashlib.sha256(ref_scp.read_bytes()).hexdigest(),
    }


def decode_set(
    anchor: Anchor,
    kbps: float,
    ref_scp: str | Path,
    set_name: str,
    anchors_dir: str | Path,
    nj: int = 1,
    force: bool = False,
) -> Path:
    """Encode and decode every utterance of ``ref_scp`` with one anchor at one bitrate.

    Writes ``<anchors_dir>/<anchor>_<kbps>/decode_<set_name>/``: ``wav/<utt>.wav``
    (16-bit, at the reference rate, same length as the reference), ``wav.scp``,
    ``utt2bytes`` (compressed size per utterance), ``bitrate`` (the measured kbps, as
    stage 6 writes the nominal one) and ``anchor.json`` (tool version, nominal and
    measured kbps, bytes, seconds). Idempotent: when ``anchor.json`` records the same
    tool, bitrate and ``ref_scp`` content, nothing is redone (unless ``force``).

    Args:
        anchor (Anchor): from :func:`get_anchor`.
        kbps (float): nominal bitrate in kbps.
        ref_scp: reference ``wav.scp`` (e.g. ``dump/raw/test/wav.scp``).
        set_name (str): the set's name, used in folder names.
        anchors_dir: root shared by every experiment (``exp/anchors``).
        nj (int): parallel encoder processes.
        force (bool): decode again even when up to date.

    Returns:
        Path: the decode folder.

    Raises:
        AnchorError: a missing tool or a failed command; ValueError: a bad bitrate.
        codectk.io.audio.AudioError: an unreadable reference.
    """
    anchor.check_kbps(kbps)
    anchor.check_tools()
    ref_scp = Path(ref_scp)
    out = Path(anchors_dir) / anchor.dirname(kbps) / f"decode_{set_name}"
    stamp = _stamp(anchor, kbps, ref_scp)
    meta_path = out / "anchor.json"
    if not force and meta_path.is_file() and (out / "wav.scp").is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in stamp} == stamp:
            log.info("%s is up to date (%s)", out, stamp["tool"])
            return out
    refs = read_scp(ref_scp)
    t0 = time.perf_counter()
    wav_dir = (out / "wav").resolve()

    def one(item: tuple[int, tuple[str, str]]) -> tuple[str, int, float]:
        i, (utt, spec) = item
        wav, fs = read_audio(spec, f"{ref_scp}:{i}")
        x = to_mono(wav)  # (C, T) -> (T,)
        with tempfile.TemporaryDirectory(prefix="anchor.") as work:
            y, n_bytes = anchor.encode_decode(x, fs, kbps, Path(work))
        write_audio(wav_dir / f"{utt}.wav", y, fs)
        return utt, n_bytes, x.size / fs

    with ThreadPoolExecutor(max(1, nj)) as pool:  # the work is in the subprocesses
        results = list(pool.map(one, enumerate(refs.items(), 1)))
    total_bytes = sum(r[1] for r in results)
    total_s = sum(r[2] for r in results)
    measured = total_bytes * 8 / total_s / 1000 if total_s else math.nan
    write_scp(out / "wav.scp", {u: str(wav_dir / f"{u}.wav") for u, _, _ in results})
    write_scp(out / "utt2bytes", {u: b for u, b, _ in results})
    with atomic_write(out / "bitrate") as f:
        f.write(f"{measured:.6g}\n")
    meta = {
        **stamp,
        "measured_kbps": measured,
        "n_utts": len(results),
        "total_bytes": total_bytes,
        "total_seconds": total_s,
    }
    with atomic_write(meta_path) as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    log.info(
        "%s %g kbps: %d utterances (%.1f s) -> %d bytes = %.3f kbps measured, in %.1f s -> %s",
        anchor.name,
        kbps,
        len(results),
        total_s,
        total_bytes,
        measured,
        time.perf_counter() - t0,
        out,
    )
    return out


def score_set(
    decode_dir: str | Path,
    ref_scp: str | Path,
    set_name: str,
    metrics: Sequence[str] | None = None,
    nj: int = 1,
    force: bool = False,
    text: str | Path | None = None,
    max_delay_ms: float = MAX_DELAY_MS,
) -> Path:
    """Score an anchor's decode folder with :func:`codectk.eval.score.score`.

    Writes ``<anchor dir>/scores/<set_name>/`` (as stage 7 does for a model) with the
    measured bitrate as ``bitrate_kbps``, the decoded signal's delay compensated within
    ``max_delay_ms`` before the sample-aligned metrics, and recognised references kept
    in ``<anchors_dir>/.cache`` (shared by every anchor of the set). Skipped when its
    ``summary.json`` is newer than the decode's ``anchor.json`` and holds the same
    metrics, transcripts and delay range (unless ``force``).

    Args:
        decode_dir: from :func:`decode_set`.
        ref_scp: the reference ``wav.scp``.
        set_name (str): the set's name.
        metrics: metric names (None: every installed one, see
            :func:`codectk.eval.metrics.default_metrics`).
        nj (int): scoring processes.
        force (bool): score again even when up to date.
        text: Kaldi ``text`` of the references (for WER/CER).
        max_delay_ms (float): delay search range in ms (0: no compensation).

    Returns:
        Path: the scores folder.
    """
    decode_dir = Path(decode_dir)
    names = list(metrics) if metrics is not None else default_metrics(text is not None)
    out = decode_dir.parent / "scores" / set_name
    summary = out / "summary.json"
    meta = decode_dir / "anchor.json"
    if not force and summary.is_file() and summary.stat().st_mtime >= meta.stat().st_mtime:
        old = json.loads(summary.read_text())
        aligned = max_delay_ms if any(METRICS[n].aligned for n in names) else 0.0
        same = (
            old.get("metrics") == columns(names)
            and old.get("text") == (None if text is None else str(text))
            and (old.get("delay") or {}).get("max_delay_ms", 0.0) == float(aligned)
        )
        if same:
            log.info("%s is up to date", out)
            return out
    measured = float((decode_dir / "bitrate").read_text())
    score(
        ref_scp,
        decode_dir / "wav.scp",
        out,
        names,
        bitrate_kbps=measured,
        nj=nj,
        text=text,
        max_delay_ms=max_delay_ms,
        cache_dir=decode_dir.parent.parent / ".cache",
    )
    return out
