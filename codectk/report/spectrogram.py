"""Per-utterance log-mel spectrogram comparisons (reference above every decoding)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from codectk.features import MelSpectrogram, hz_to_mel
from codectk.io.fileio import atomic_replace_from


def log_mel(wav: np.ndarray, fs: int, n_mels: int = 80) -> np.ndarray:
    """Log10 mel magnitude spectrogram with 25 ms windows and 10 ms hops.

    Args:
        wav (np.ndarray): mono waveform, shape (T,), at ``fs`` Hz.
        fs (int): sample rate in Hz.
        n_mels (int): mel bands.

    Returns:
        np.ndarray: shape (n_mels, frames).
    """
    win, hop = int(round(0.025 * fs)), int(round(0.010 * fs))
    n_fft = 1 << (win - 1).bit_length()
    mel = MelSpectrogram(fs, n_fft=n_fft, hop_length=hop, win_length=win, n_mels=n_mels)
    with torch.inference_mode():
        return mel(torch.from_numpy(wav.astype(np.float32))[None])[0].numpy()


#: Frequencies (Hz) marked on the spectrograms' axis, those below Nyquist.
FREQ_TICKS_HZ = (0, 250, 500, 1000, 2000, 4000, 8000, 16000)
DB_RANGE = 80.0  # dB shown below the reference's maximum


def mel_band_axis(fs: int, n_mels: int = 80) -> tuple[list[float], list[str]]:
    """Positions (fractional mel-band row) and labels of the :data:`FREQ_TICKS_HZ`
    inside the axis of :func:`log_mel` (Slaney mel scale from 0 Hz to ``fs / 2``: band k
    is centred on point k + 1 of ``n_mels + 2`` equally spaced mel points)."""
    top = hz_to_mel(torch.tensor(fs / 2.0)).item()
    ticks, labels = [], []
    for hz in FREQ_TICKS_HZ:
        # band k (row k, drawn over [k - 0.5, k + 0.5]) is centred on mel point k + 1
        pos = hz_to_mel(torch.tensor(float(hz))).item() / top * (n_mels + 1) - 1
        if -0.5 <= pos <= n_mels - 0.5:
            ticks.append(pos)
            labels.append(f"{hz // 1000}k" if hz >= 1000 else str(hz))
    return ticks, labels


def comparison_figure(rows: Sequence[tuple[str, np.ndarray]], fs: int, title: str):
    """The figure of :func:`plot_comparison` (a ``matplotlib.figure.Figure``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [(label, 20.0 * log_mel(w, fs)) for label, w in rows]  # log10 magnitude -> dB
    vmax = float(specs[0][1].max())
    vmin = vmax - DB_RANGE
    ticks, tick_labels = mel_band_axis(fs, specs[0][1].shape[0])
    height = 1.9 * len(specs) + 1.0
    fig, axes = plt.subplots(
        len(specs), 1, figsize=(10, height), squeeze=False, sharex=True, layout="constrained"
    )
    image = None
    for ax, (label, s) in zip(axes[:, 0], specs):
        image = ax.imshow(
            s,
            origin="lower",
            aspect="auto",
            vmin=vmin,
            vmax=vmax,
            cmap="magma",
            interpolation="nearest",
            extent=(0, s.shape[1] * 0.010, -0.5, s.shape[0] - 0.5),
        )
        ax.set_title(label, loc="left", fontsize=11)
        ax.set_yticks(ticks, tick_labels, fontsize=9)
        ax.set_ylabel("Hz (mel scale)", fontsize=9)
        ax.tick_params(axis="x", labelsize=9)
    axes[-1, 0].set_xlabel("time (s)", fontsize=10)
    bar = fig.colorbar(  # the same width whatever the number of rows
        image, ax=axes[:, 0].tolist(), shrink=0.9, pad=0.01, aspect=12 * len(specs)
    )
    bar.set_label("magnitude (dB)", fontsize=9)
    fig.suptitle(title, fontsize=12)
    return fig


def plot_comparison(
    rows: Sequence[tuple[str, np.ndarray]], fs: int, title: str, path: str | Path
) -> Path:
    """Stack the log-mel spectrograms of ``rows`` (label, waveform (T,) at ``fs`` Hz) in
    one PNG, on one colour scale: dB from the first row's (the reference's) maximum down
    :data:`DB_RANGE` dB, with a colour bar, a frequency axis in Hz and each row's label
    above it.

    Returns:
        Path: ``path``.
    """
    import matplotlib.pyplot as plt

    fig = comparison_figure(rows, fs, title)
    path = Path(path)
    atomic_replace_from(lambda tmp: fig.savefig(tmp, dpi=90, format="png"), path)
    plt.close(fig)
    return path
