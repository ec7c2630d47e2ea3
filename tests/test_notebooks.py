"""The notebooks in notebooks/: committed executed, small and clean, and each shows what it claims.

The committed copies hold a real run's outputs (plots, accuracy, the export tables); the slow test
runs every notebook again on the quick settings (``KERAS_PVT_NOTEBOOK_QUICK=1``) and checks, from the
``summary:`` line a notebook prints, that 02 learns (held-out accuracy above chance), 04 beats the
all-background segmenter and writes its float32 and int8 TFLite files, and 05 beats the centred
mean-box detector's COCO AP50 by a clear margin and its TFLite file (NMS inside) scores as Keras.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300
MAX_NOTEBOOK_BYTES = 200_000  # outputs stay small: modest figures, no progress bars or logs
SUMMARY = re.compile(r"^summary: (\{.*\})$", re.MULTILINE)
# Output text that would name the machine that ran the notebook: its temporary or home folders.
MACHINE_PATHS = re.compile(r"/tmp/|/var/folders/|/home/|/root/|/Users/|[A-Za-z]:\\")
# Above chance means above it by this many binomial standard deviations (one-sided p < 0.0014).
CHANCE_SIGMAS = 3.0
# The notebooks whose committed run shows plots (02, 03, 04, 05; 01 prints only), as PNG or JPEG.
WITH_FIGURES = ("02_finetune_model_fit", "03_export_tflite", "04_segmentation", "05_detection")
FIGURE_TYPES = {"image/png", "image/jpeg"}
# 05: a clear win is held-out AP50 at least this far above the baseline's (whose AP50 is near 0), and
# the float32 TFLite file's AP within this of Keras' (the same model; NMS near-ties may reorder).
AP50_MARGIN = 0.02
TFLITE_AP_TOLERANCE = 0.01


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def all_outputs(notebook: Any) -> list[Any]:
    return [output for cell in code_cells(notebook) for output in cell.get("outputs", [])]


def output_text(notebook: Any) -> str:
    """Every text a reader sees in the outputs: streams, plain text, Markdown and HTML."""
    texts = []
    for output in all_outputs(notebook):
        texts.append(output.get("text", ""))
        data = output.get("data", {})
        texts.extend(data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html"))
    return "\n".join(texts)


def summary_of(notebook: Any) -> dict[str, Any]:
    """The dict of the last ``summary: {...}`` line a notebook printed."""
    stdout = "".join(
        output.get("text", "")
        for output in all_outputs(notebook)
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
    found = SUMMARY.findall(stdout)
    assert found, "the notebook printed no `summary: {...}` line"
    return json.loads(found[-1])


def chance_bound(chance: float, images: int) -> float:
    """The accuracy a classifier at `chance` exceeds with probability < 0.0014 on `images` images."""
    return chance + CHANCE_SIGMAS * math.sqrt(chance * (1.0 - chance) / images)


def assert_learns(summary: dict[str, Any]) -> None:
    """02: held-out accuracy is above chance (the most frequent class's share), beyond noise."""
    bound = chance_bound(summary["chance"], summary["held_out_images"])
    assert summary["held_out_accuracy"] > bound, (
        f"held-out accuracy {summary['held_out_accuracy']:.3f} on {summary['held_out_images']} images "
        f"does not beat chance {summary['chance']:.3f} (needs > {bound:.3f})"
    )


def assert_beats_background(summary: dict[str, Any]) -> None:
    """04: held-out mIoU above the all-background segmenter's; both TFLite files written and checked,
    the int8 one smaller than float32."""
    assert summary["test_miou"] > summary["baseline_miou"], (
        f"test mIoU {summary['test_miou']:.4f} does not beat the all-background baseline "
        f"{summary['baseline_miou']:.4f}"
    )
    exports = summary["exports"]
    assert set(exports) == {"none", "int8"}, f"exports run: {sorted(exports)}"
    for mode, export in exports.items():
        assert export["status"] in ("OK", "INCONCLUSIVE"), f"{mode}: {export}"
    assert exports["int8"]["size_bytes"] < exports["none"]["size_bytes"], exports


def assert_beats_centred_boxes(summary: dict[str, Any]) -> None:
    """05: held-out COCO AP50 clearly above the baseline's (per class, its mean box at the image
    centre) and AP above its AP; the float32 TFLite file, NMS inside, written and scoring as Keras."""
    bound = summary["baseline_ap50"] + AP50_MARGIN
    assert summary["test_ap50"] >= bound, (
        f"test AP50 {summary['test_ap50']:.4f} on {summary['test_images']} images does not beat the "
        f"centred mean-box baseline {summary['baseline_ap50']:.4f} by {AP50_MARGIN} (needs >= {bound:.4f})"
    )
    assert summary["test_ap"] > summary["baseline_ap"], (summary["test_ap"], summary["baseline_ap"])
    assert summary["tflite_size_bytes"] > 0
    assert abs(summary["tflite_ap"] - summary["test_ap"]) <= TFLITE_AP_TOLERANCE, (
        f"TFLite AP {summary['tflite_ap']:.4f} vs Keras {summary['test_ap']:.4f}"
    )


CLAIMS: dict[str, Callable[[dict[str, Any]], None]] = {
    "02_finetune_model_fit": assert_learns,
    "04_segmentation": assert_beats_background,
    "05_detection": assert_beats_centred_boxes,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_was_executed(path):
    notebook = nbformat.read(path, as_version=4)
    counts = [cell.get("execution_count") for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), f"not one top-to-bottom run: {counts}"
    outputs = all_outputs(notebook)
    assert outputs, "no outputs"
    assert not [o for o in outputs if o.get("output_type") == "error"]
    noise = [o["text"][:200] for o in outputs if o.get("name") == "stderr"]
    assert not noise, f"warnings, logs or progress bars in the outputs: {noise}"
    machine_path = MACHINE_PATHS.search(output_text(notebook))
    assert not machine_path, f"a path of the machine that ran it: {machine_path}"
    size = path.stat().st_size
    assert size <= MAX_NOTEBOOK_BYTES, f"{size:,} bytes"


@pytest.mark.parametrize("stem", WITH_FIGURES)
def test_committed_notebook_shows_figures(stem):
    notebook = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    figures = [o for o in all_outputs(notebook) if FIGURE_TYPES & set(o.get("data", {}))]
    assert figures, "no plot in the committed outputs"


@pytest.mark.parametrize("stem", sorted(CLAIMS))
def test_committed_notebook_shows_its_claim(stem):
    summary = summary_of(nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4))
    assert summary["quick"] is False, "the committed outputs are from the quick settings"
    CLAIMS[stem](summary)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("KERAS_PVT_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KERAS_PVT_DATA_DIR", str(tmp_path / "tfds"))  # generated offline, here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("KERAS_PVT_MODEL", raising=False)
    monkeypatch.delenv("KERAS_PVT_DATASET", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    assert not [o for o in all_outputs(notebook) if o.get("output_type") == "error"]
    if path.stem in CLAIMS:
        summary = summary_of(notebook)
        assert summary["quick"] is True
        CLAIMS[path.stem](summary)
