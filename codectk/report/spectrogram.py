"""Per-utterance log-mel spectrogram comparisons (reference above every decoding)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from codectk.features import MelSpectrogram
from codectk.fileio import atomic_replace_from


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


def plot_comparison(
    rows: Sequence[tuple[str, np.ndarray]], fs: int, title: str, path: str | Path
) -> Path:
    """Stack the log-mel spectrograms of ``rows`` (label, waveform (T,) at ``fs`` Hz) in
    one PNG, on one colour scale (that of the first row, the reference).

    Returns:
        Path: ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [(label, log_mel(w, fs)) for label, w in rows]
    vmax = float(specs[0][1].max())
    vmin = vmax - 4.0  # 80 dB of magnitude range
    fig, axes = plt.subplots(len(specs), 1, figsize=(10, 1.4 * len(specs) + 0.6), squeeze=False)
    for ax, (label, s) in zip(axes[:, 0], specs):
        dur = s.shape[1] * 0.010
        ax.imshow(
            s,
            origin="lower",
            aspect="auto",
            vmin=vmin,
            vmax=vmax,
            cmap="magma",
            interpolation="nearest",
            extent=(0, dur, 0, s.shape[0]),
        )
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelbottom=False)
    axes[-1, 0].tick_params(labelbottom=True)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.4 / fig.get_figheight(), hspace=0.15)
    path = Path(path)
    atomic_replace_from(lambda tmp: fig.savefig(tmp, dpi=80, format="png"), path)
    plt.close(fig)
    return path
