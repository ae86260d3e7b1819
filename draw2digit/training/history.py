"""A run's history: read back from ``history.csv``, and plotted with the run it continues."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from draw2digit.artifacts import ModelCard, resolve_model_path


def read_history(csv_path: Path) -> dict[str, list[float]]:
    """The whole run's history, including epochs done before a resume."""

    if not csv_path.exists():
        return {}
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}


def parent_history(init_from: str | None, classes: int) -> dict[str, list[float]]:
    """The history of the model a run starts from, when the run continues it (same classes).

    A second stage (``--init-from`` the first, say with ``--cut-pieces``) is one
    training in two runs, so its plot shows both; a run that grows a ten-class model
    into eleven classes starts a new training and shows its own epochs only.
    """
    if not init_from:
        return {}
    folder = resolve_model_path(init_from, ".keras").parent
    if ModelCard.read(folder).classes != classes:
        return {}
    return read_history(folder / "history.csv")


def plot_history(
    history: dict[str, list[float]], path: str | Path, *, then: dict[str, list[float]] | None = None
) -> Path:
    """Accuracy and loss per epoch, train against validation; ``then``: a later run's, after a line."""
    from matplotlib.figure import Figure

    first = len(history.get("loss", []))
    if then:
        history = {k: [*history.get(k, []), *v] for k, v in then.items() if not history or k in history}
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, key, title in (
        (axes[0], "accuracy", "Accuracy"),
        (axes[1], "loss", "Loss"),
    ):
        ax.plot(epochs, history[key], "o-", label="train (augmented)")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        if then and first:
            ax.axvline(first + 0.5, color="grey", linestyle="--", label="second run starts")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if "val_accuracy" in history:  # the first epoch's training accuracy may fall below: the rest may not
        lowest = min(*history["val_accuracy"], *(history["accuracy"][1:] or history["accuracy"]))
        axes[0].set_ylim(max(0.9, lowest - 0.01), 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
