"""Run outputs: `history.csv`, the training-curve plot, JSON files; each written atomically."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from keras_pvt._safe_write import replacing

# The columns of history.csv that the curves plot, one panel each (with their val_ column).
PANELS = ("loss", "accuracy", "mean_iou", "pixel_accuracy", "ap", "ap50")


def read_history(path: str) -> dict[str, list[float]]:
    """`history.csv` (written by `write_history`) as ``{column: [value per epoch]}``."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(_number(value))
    return columns


def write_history(path: str, rows: Sequence[dict[str, float]]) -> None:
    """One CSV row per epoch (columns ``epoch`` then the sorted metric names), as `CSVLogger` did."""
    columns = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
    with replacing(path) as temp, open(temp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def plot_history(history: dict[str, list[float]], path: str) -> str | None:
    """Loss and accuracy (or mean IoU and pixel accuracy, or COCO AP and AP50) curves, train and
    validation (where the history has them), to a PNG; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the training-curve plot (pip install matplotlib).")
        return None
    epochs = [int(e) + 1 for e in history.get("epoch", [])]
    if not epochs:
        return None
    panels = [name for name in PANELS if name in history or f"val_{name}" in history]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, name in zip(axes[0], panels):
        if name in history:
            axis.plot(epochs, history[name], marker="o", label=f"train {name}")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label=f"validation {name}")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with replacing(path) as temp:
        figure.savefig(temp, dpi=100, format="png")
    plt.close(figure)
    return path


def write_json(path: str, values: dict[str, Any]) -> None:
    with replacing(path) as temp, open(temp, "w") as handle:
        json.dump(values, handle, indent=2, sort_keys=True)


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
