"""The report's spectrogram figure: labels inside the picture, a frequency axis in Hz,
a colour bar."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from codectk.report.spectrogram import comparison_figure, mel_band_axis, plot_comparison
from test.conftest import bundled_flacs


def test_rows_labelled_inside_the_figure_with_axis_and_colour_bar(tmp_path):
    x, fs = sf.read(str(bundled_flacs()[0]), dtype="float32", frames=32000)
    labels = ["reference", "codec_soundstream_16k_tiny_untrained_1.6kbps", "opus_6"]
    rows = [(label, x * (0.5**i)) for i, label in enumerate(labels)]
    fig = comparison_figure(rows, fs, "test/utt: log-mel spectrograms")
    fig.canvas.draw()
    box = fig.bbox
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3 and len(fig.axes) == 4  # three rows and the colour bar
    for ax, label in zip(images, labels):
        title = ax.title if ax.title.get_text() else ax._left_title
        assert title.get_text() == label
        extent = title.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label  # not cut off
        assert [t.get_text() for t in ax.get_yticklabels()] == ["250", "500", "1k", "2k", "4k"]
    assert "dB" in fig.axes[-1].get_ylabel()
    png = plot_comparison(rows, fs, "t", tmp_path / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_frequency_ticks_follow_the_mel_scale():
    ticks, labels = mel_band_axis(16000, 80)
    assert labels == ["250", "500", "1k", "2k", "4k"]
    assert np.all(np.diff(ticks) > 0) and 0 < ticks[0] and ticks[-1] < 79.5
    # Slaney's scale is linear below 1 kHz: 500 Hz sits twice as high as 250 Hz (+ 1 row)
    assert abs((ticks[1] + 1) - 2 * (ticks[0] + 1)) < 1e-9
    assert mel_band_axis(44100)[1][-1] == "16k"
