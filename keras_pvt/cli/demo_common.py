"""What the classification and segmentation demos share: the small PVT-v2 they train, the output
folder (new, empty, or an earlier demo's: it holds a marker), the verified exports, the summary
files and printout, progress lines."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from keras_pvt._safe_write import OutputRefusedError, replacing
from keras_pvt.training.outputs import write_json

# A small PVT-v2 (four stages, one block each) that learns the shapes tasks on 2 CPU cores.
DEMO_ARCH = {
    "embed_dims": [32, 64, 96, 128],
    "num_heads": [1, 2, 3, 4],
    "mlp_ratios": [4, 4, 4, 4],
    "depths": [1, 1, 1, 1],
    "sr_ratios": [8, 4, 2, 1],
}
DEMO_MARKER = ".keras-pvt-demo"  # in a folder the demo made, so that a rerun may replace its files


def start_demo(args: argparse.Namespace) -> tuple[str, str]:
    """No dataset progress bars; the demo's output folder (`prepare_output`) and its data folder."""
    quiet_datasets()
    output = prepare_output(args.output)
    return output, os.path.join(output, "tensorflow_datasets")


def prepare_output(folder: str) -> str:
    """The demo's absolute output folder, created and marked: new, empty, or an earlier demo's."""
    output = Path(folder).resolve()
    cwd = Path.cwd().resolve()
    if output == cwd or output in cwd.parents:
        raise OutputRefusedError(
            f"--output {folder!r} is the current folder or one of its parents; the demo needs a "
            "folder of its own, e.g. --output demo_output."
        )
    if output.exists() and not output.is_dir():
        raise OutputRefusedError(f"--output {folder!r} is a file; give a folder for the demo's files.")
    if output.is_dir() and any(output.iterdir()) and not made_by_demo(output):
        raise OutputRefusedError(
            f"--output {folder!r} is a folder with files that the demo did not make; the demo "
            "never writes into it. Give a new or empty folder, e.g. --output demo_output."
        )
    output.mkdir(parents=True, exist_ok=True)
    (output / DEMO_MARKER).touch()
    return str(output)


def made_by_demo(folder: Path) -> bool:
    """The folder holds the demo's marker, or the summary of a demo run made before markers."""
    if (folder / DEMO_MARKER).is_file():
        return True
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and str(summary.get("dataset", "")).startswith("keras_pvt_shapes")


def write_summary(output: str, summary: dict[str, Any], table: str) -> None:
    """``summary.json`` (every number) and ``summary.md`` (the export table) in the demo's folder."""
    write_json(os.path.join(output, "summary.json"), summary)
    with replacing(os.path.join(output, "summary.md")) as temp:
        temp.write_text(table + "\n")


def demo_pipelines(
    make: Callable[..., Any], args: argparse.Namespace, dataset: str, data_dir: str, **augmentation: Any
) -> Any:
    """`make` (the task's `make_*pipelines`) for the demo: generated into `data_dir`, cached, the
    best epoch selected on 10% of train (the test split stays unseen); prints the split sizes."""
    step(f"1/4 data: {dataset} (generated locally into {data_dir})")
    pipes = make(
        dataset,
        image_size=args.image_size,
        batch_size=args.batch_size,
        data_dir=data_dir,
        val_from_train=True,
        cache=True,
        **augmentation,
    )
    print(
        f"   {pipes.train_size} training / {pipes.val_size} validation images, "
        f"classes: {', '.join(pipes.class_names)}"
    )
    return pipes


def export_and_verify(
    compare: Callable[..., list[Any]],
    result: Any,
    images: Any,
    labels: Any,
    calibration: Any,
    args: argparse.Namespace,
    output: str,
) -> list[Any]:
    """`compare` (the task's export-and-compare) on the trained `result`, into ``output/export``:
    one row per format, Keras first, measured on the held-out `images` and `labels`."""
    keras.utils.set_random_seed(0)
    return compare(
        result.model,
        os.path.join(output, "export"),
        images,
        labels,
        calibration,
        image_size=args.image_size,
        keras_path=result.best_model_path,
        threads=args.threads,
        overwrite=True,  # only previous exports are replaced, in a folder the demo made
    )


def report(output: str, summary: dict[str, Any], table: str, *, title: str, model: str, scores: str) -> None:
    """Write ``summary.json`` and ``summary.md``; print the summary: `title`, the `model` (its name)
    with its size and training, the held-out `scores` line, the export table and the files."""
    write_summary(output, summary, table)
    print(f"\n=== {title} ===")
    print(
        f"model: {model} ({summary['parameters']:,} parameters), {summary['image_size']}px, "
        f"{summary['epochs_run']} epochs in {summary['train_seconds'] / 60:.1f} min"
    )
    print(scores)
    print(table)
    print(
        f"files: {output} (run/best.keras, run/history.csv, run/training_curves.png, export/, "
        f"summary.json); total {summary['total_seconds'] / 60:.1f} min"
    )


def quiet_datasets() -> None:
    """No tfds progress bars or absl info lines in the demo's output."""
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    tfds.disable_progress_bar()
    absl_logging.set_verbosity(absl_logging.ERROR)


def step(message: str) -> None:
    print(f"\n[demo] {message}", flush=True)
