"""Noisy/clean training pairs: mix a clean data dir with noise at given SNRs (dB).

Usage::

    python -m codectk.bin.make_noisy --clean dump/raw/train --noise_scp noise/wav.scp \\
        --snrs "0 5 10 15" --out dump/raw/train_noisy [--seed 0]

For each clean utterance x (mono, at the dir's rate): draw a noise recording, an SNR
s from ``--snrs`` and a random start (the noise is looped when shorter), scale the noise
segment n by g so that 10 log10(sum x^2 / sum (g n)^2) = s, and write y = x + g n. When
|y| would exceed 0.99 both y and x are scaled by the same factor, so the pair keeps
its SNR; both are written (16-bit WAV) under ``<out>/data/``. The output dir holds
``wav.scp`` (noisy), ``clean.scp`` (the clean targets, same ids), ``utt2snr``
(``<utt> <snr dB> <noise id>``), ``utt2num_samples``, ``fs``, and ``utt2spk`` /
``spk2utt`` copied from ``--clean``. Training on such a dir gives (noisy input, clean
target) batches (:class:`codectk.data.dataset.RandomCropDataset`).

The noise can be any recordings (e.g. DEMAND, MUSAN noise, the VoiceBank-DEMAND noise);
they are resampled to the clean rate. The bundled recipe uses other speakers' speech
(interfering talkers) because the repository ships no noise corpus.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from codectk.bin.common import parser, run
from codectk.errors import CodectkError
from codectk.io.audio import AudioError, read_audio, resample, to_mono, write_audio
from codectk.io.datadir import DataDirError, read_scp, write_scp
from codectk.io.fileio import atomic_write
from codectk.log import setup_logging, timed


def mix_at_snr(
    clean: np.ndarray, noise: np.ndarray, snr_db: float, peak: float = 0.99
) -> tuple[np.ndarray, np.ndarray, float]:
    """Add ``noise`` to ``clean`` at ``snr_db`` (energy ratio over the utterance).

    Args:
        clean (np.ndarray): (T,) float.
        noise (np.ndarray): (T,) float, not all zero.
        snr_db (float): target SNR in dB.
        peak (float): largest allowed |noisy| (both signals are scaled down together).

    Returns:
        tuple[np.ndarray, np.ndarray, float]: noisy (T,), clean (T,) (scaled like the
        noisy one), and the noise gain g.

    Raises:
        ValueError: different lengths or silent noise.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean {clean.shape} and noise {noise.shape} differ")
    p_clean, p_noise = (
        float(np.sum(clean.astype(np.float64) ** 2)),
        float(np.sum(noise.astype(np.float64) ** 2)),
    )
    if p_noise <= 0:
        raise ValueError("noise segment is silent")
    gain = np.sqrt(p_clean / (p_noise * 10.0 ** (snr_db / 10.0)))
    noisy = clean + gain * noise
    top = float(np.max(np.abs(noisy))) if noisy.size else 0.0
    if top > peak:
        noisy, clean = noisy * (peak / top), clean * (peak / top)
    return noisy.astype(np.float32), clean.astype(np.float32), float(gain)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--clean", required=True, help="clean data dir (wav.scp, fs)")
    p.add_argument("--noise_scp", required=True, help="wav.scp of noise recordings")
    p.add_argument("--snrs", default="0 5 10 15", help="SNRs in dB, one drawn per utterance")
    p.add_argument("--out", required=True, help="output data dir")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    setup_logging()
    log = logging.getLogger("codectk.make_noisy")
    try:
        snrs = [float(s) for s in args.snrs.split()]
    except ValueError:
        raise CodectkError(f"--snrs {args.snrs!r}: expected numbers in dB, e.g. '0 5 10'") from None
    if not snrs:
        raise CodectkError("--snrs is empty")
    clean_dir, out = Path(args.clean), Path(args.out)
    fs_file = clean_dir / "fs"
    if not fs_file.is_file():
        raise DataDirError(f"{fs_file}: missing (make_noisy needs a dumped data dir, stage 2)")
    fs = int(fs_file.read_text().strip())
    clean_scp = read_scp(clean_dir / "wav.scp")
    noise_scp = read_scp(args.noise_scp)
    if not noise_scp:
        raise DataDirError(f"{args.noise_scp}: no noise recordings")
    noises: dict[str, np.ndarray] = {}
    for i, (nid, spec) in enumerate(noise_scp.items(), 1):
        wav, nfs = read_audio(spec, f"{args.noise_scp}:{i}")
        wav = resample(to_mono(wav), nfs, fs)
        if not np.any(wav):
            raise AudioError(f"{spec} ({args.noise_scp}:{i}) is silent")
        noises[nid] = wav
    noise_ids = sorted(noises)
    rng = np.random.default_rng(args.seed)
    wav_dir = (out / "data").resolve()
    noisy_scp, target_scp, utt2snr, lens = {}, {}, {}, {}
    with timed(f"mixing {len(clean_scp)} utterances"):
        for i, (utt, spec) in enumerate(clean_scp.items(), 1):
            wav, cfs = read_audio(spec, f"{clean_dir / 'wav.scp'}:{i}")
            if cfs != fs:
                raise AudioError(
                    f"{spec} ({clean_dir / 'wav.scp'}:{i}) is {cfs} Hz, the dir's fs is {fs}"
                )
            x = to_mono(wav)
            nid = noise_ids[int(rng.integers(len(noise_ids)))]
            snr = snrs[int(rng.integers(len(snrs)))]
            noise = noises[nid]
            start = int(rng.integers(len(noise)))
            reps = -(-(start + len(x)) // len(noise))
            seg = np.tile(noise, reps)[start : start + len(x)]
            if not np.any(seg):
                seg = np.tile(noise, -(-len(x) // len(noise)))[: len(x)]
            noisy, target, _ = mix_at_snr(x, seg, snr)
            write_audio(wav_dir / f"{utt}.noisy.wav", noisy, fs)
            write_audio(wav_dir / f"{utt}.clean.wav", target, fs)
            noisy_scp[utt] = str(wav_dir / f"{utt}.noisy.wav")
            target_scp[utt] = str(wav_dir / f"{utt}.clean.wav")
            utt2snr[utt] = f"{snr:g} {nid}"
            lens[utt] = len(x)
    write_scp(out / "wav.scp", noisy_scp)
    write_scp(out / "clean.scp", target_scp)
    write_scp(out / "utt2snr", utt2snr)
    write_scp(out / "utt2num_samples", lens)
    for name in ("utt2spk", "spk2utt", "spk2gender"):
        if (clean_dir / name).is_file():
            shutil.copyfile(clean_dir / name, out / f".{name}.tmp")
            (out / f".{name}.tmp").replace(out / name)
    with atomic_write(out / "fs") as f:
        f.write(f"{fs}\n")
    log.info(
        "make_noisy: %d pairs at SNRs %s dB with %d noise recordings -> %s",
        len(noisy_scp),
        snrs,
        len(noise_ids),
        out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
