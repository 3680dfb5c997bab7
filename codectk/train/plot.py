"""Training-curve PNGs (``exp/<exp>/images/<name>.png``) from the trainer's history."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from codectk.fileio import atomic_replace_from  # noqa: E402


def plot_history(history: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write one PNG per logged quantity: train and valid curves against the step.

    Args:
        history: records ``{"step": int, "phase": "train"|"valid", <name>: float, ...}``.
        out_dir: the ``images/`` folder.

    Returns:
        list[Path]: the files written.
    """
    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for rec in history:
        for name, value in rec.items():
            if name in ("step", "phase") or not isinstance(value, (int, float)):
                continue
            steps, values = series.setdefault(name, {}).setdefault(rec["phase"], ([], []))
            steps.append(rec["step"])
            values.append(value)
    written = []
    for name, phases in sorted(series.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for phase, (steps, values) in sorted(phases.items()):
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=phase)
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(out_dir) / f"{name}.png"
        atomic_replace_from(lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=80), path)
        plt.close(fig)
        written.append(path)
    return written
