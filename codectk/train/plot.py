"""Training-curve PNGs (``exp/<exp>/images/<name>.png``) from the trainer's history.

One figure per quantity, with its training and validation curves together: the
trainer logs a generator loss term ``<k>`` as ``g_<k>`` on training steps and as
``<k>`` on validation, and both are drawn in ``images/<k>.png``; discriminator terms
(``d_<k>``, training only) and validation-only metrics (``mel_distance``) get a figure
each. A curve that is zero throughout (a term that is off, e.g. the codebook loss of EMA
codebooks, or the adversarial term validation does not compute) is left out, and a
quantity with no other curve gets no figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from codectk.io.fileio import atomic_replace_from  # noqa: E402

PHASE_LABELS = {"train": "train (mean over the logging interval)", "valid": "validation"}


def curve_name(phase: str, key: str) -> str:
    """The figure a history entry belongs to: ``g_mel`` (train) and ``mel`` (valid)
    are both ``mel``; other keys keep their name."""
    return key[2:] if phase == "train" and key.startswith("g_") else key


def collect_series(history: list[dict]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Curves by figure name and phase: ``{name: {phase: (steps, values)}}``, without the
    curves that are zero throughout.

    Args:
        history: records ``{"step": int, "phase": "train"|"valid", <key>: float, ...}``.
    """
    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for rec in history:
        for key, value in rec.items():
            if key in ("step", "phase") or not isinstance(value, (int, float)):
                continue
            name = curve_name(rec["phase"], key)
            steps, values = series.setdefault(name, {}).setdefault(rec["phase"], ([], []))
            steps.append(rec["step"])
            values.append(float(value))
    kept = {}
    for name, phases in series.items():
        live = {p: sv for p, sv in phases.items() if any(v != 0 for v in sv[1])}
        if live:
            kept[name] = live
    return kept


def plot_history(history: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write one PNG per quantity, its train and valid curves against the step, and
    remove PNGs in ``out_dir`` that no longer correspond to a quantity (names of earlier
    versions, terms that turned out zero).

    Args:
        history: records ``{"step": int, "phase": "train"|"valid", <name>: float, ...}``.
        out_dir: the ``images/`` folder.

    Returns:
        list[Path]: the files written.
    """
    out_dir = Path(out_dir)
    written = []
    for name, phases in sorted(collect_series(history).items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        for phase, (steps, values) in sorted(phases.items()):
            ax.plot(
                steps,
                values,
                marker="o" if len(steps) < 30 else None,
                label=PHASE_LABELS.get(phase, phase),
            )
        ax.set_xlabel("training step", fontsize=11)
        ax.set_ylabel(name, fontsize=11)
        ax.set_title(name, fontsize=12)
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=10)
        path = out_dir / f"{name}.png"
        atomic_replace_from(lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=90), path)
        plt.close(fig)
        written.append(path)
    for stale in set(out_dir.glob("*.png")) - set(written):
        stale.unlink()
    return written
