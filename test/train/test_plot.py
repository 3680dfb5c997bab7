"""Training curves: one figure per quantity with train and valid together."""

from __future__ import annotations

from codectk.train.plot import collect_series, plot_history

HISTORY = [
    {"step": 0, "phase": "valid", "mel": 3.0, "codebook": 0.0, "mel_distance": 1.0, "adv": 0.0},
    {"step": 10, "phase": "train", "g_mel": 2.5, "g_codebook": 0.0, "g_adv": 0.7, "d_total": 1.9},
    {"step": 20, "phase": "train", "g_mel": 2.0, "g_codebook": 0.0, "g_adv": 0.6, "d_total": 1.8},
    {"step": 20, "phase": "valid", "mel": 2.2, "codebook": 0.0, "mel_distance": 0.8, "adv": 0.0},
]


def test_train_and_valid_share_a_figure_and_zero_curves_go():
    series = collect_series(HISTORY)
    assert sorted(series) == ["adv", "d_total", "mel", "mel_distance"]
    assert series["mel"] == {"train": ([10, 20], [2.5, 2.0]), "valid": ([0, 20], [3.0, 2.2])}
    assert set(series["adv"]) == {"train"}  # validation computes no adversarial term


def test_plot_history_writes_one_png_per_quantity(tmp_path):
    (tmp_path / "g_mel.png").write_bytes(b"old")  # an earlier version's name
    written = plot_history(HISTORY, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["adv.png", "d_total.png", "mel.png", "mel_distance.png"]
    assert sorted(p.name for p in written) == names
