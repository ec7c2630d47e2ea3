"""`keras-pvt demo`: the end-to-end job, offline. Train a small PVT-v2 on the embedded
`keras_pvt_shapes` dataset, report held-out accuracy, export a SavedModel and TFLite files (float
and int8), verify them, and print accuracy, file sizes and latency for every format.

The output folder must be new, empty, or one an earlier demo made (it holds a `.keras-pvt-demo`
marker): a rerun then replaces the demo's own files; any other folder is refused."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import keras

from keras_pvt._safe_write import OutputRefusedError
from keras_pvt.config import PVTV2Config
from keras_pvt.data import Pipelines, eval_pipeline, make_pipelines, shapes_config, to_numpy
from keras_pvt.training import Recipe, TrainResult, train
from keras_pvt.training.callbacks import TimeBudget
from keras_pvt.training.compare_exports import export_and_compare, format_table
from keras_pvt.training.outputs import write_json

# A small PVT-v2 (four stages, one block each) that learns the 6-class shapes task on 2 CPU cores.
DEMO_ARCH = {
    "embed_dims": [32, 64, 96, 128],
    "num_heads": [1, 2, 3, 4],
    "mlp_ratios": [4, 4, 4, 4],
    "depths": [1, 1, 1, 1],
    "sr_ratios": [8, 4, 2, 1],
}
DEMO_LR = 1.6e-2  # per 512 images: peak 1e-3 at batch 32 (measured to train this model stably)
DEMO_MARKER = ".keras-pvt-demo"  # in a folder the demo made, so that a rerun may replace its files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train, evaluate, export and verify (offline)", description=__doc__
    )
    parser.add_argument("--output", default="demo_output", help="folder for the demo's files")
    parser.add_argument("--image-size", type=int, default=64, help="image side (default 64)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=3000, help="generated training images")
    parser.add_argument("--test-size", type=int, default=600, help="generated held-out images")
    parser.add_argument(
        "--time-budget", type=float, default=6.0, help="stop training after this many minutes (default 6)"
    )
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    tfds.disable_progress_bar()
    absl_logging.set_verbosity(absl_logging.ERROR)
    output = prepare_output(args.output)
    start = time.perf_counter()
    data_dir = os.path.join(output, "tensorflow_datasets")
    dataset = f"keras_pvt_shapes/{shapes_config(args.image_size, args.train_size, args.test_size).name}"
    pipes = _data(args, dataset, data_dir)
    result = _train(args, pipes, output)
    train_seconds = time.perf_counter() - start
    rows, test_count = _evaluate_and_export(args, result, dataset, data_dir, output)
    summary = {
        "dataset": dataset,
        "classes": pipes.class_names,
        "chance_accuracy": 1 / len(pipes.class_names),
        "image_size": args.image_size,
        "parameters": result.model.count_params(),
        "epochs_run": result.epochs_run,
        "best_val_accuracy": result.best_val_accuracy,
        "test_images": test_count,
        "formats": [row.to_dict() for row in rows],
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    _report(output, summary, format_table(rows), rows[0].accuracy)
    return 0


def _data(args: argparse.Namespace, dataset: str, data_dir: str) -> Pipelines:
    _step(f"1/4 data: {dataset} (generated locally into {data_dir})")
    pipes = make_pipelines(
        dataset,
        image_size=args.image_size,
        batch_size=args.batch_size,
        data_dir=data_dir,
        val_from_train=True,  # validate on 10% of train; the test split stays unseen
        crop_scale=(0.8, 1.0),
        cache=True,
    )
    print(
        f"   {pipes.train_size} training / {pipes.val_size} validation images, "
        f"classes: {', '.join(pipes.class_names)}"
    )
    return pipes


def _train(args: argparse.Namespace, pipes: Pipelines, output: str) -> TrainResult:
    _step(
        f"2/4 train: small PVT-v2 at {args.image_size}px, {args.epochs} epochs "
        f"(budget {args.time_budget:g} min)"
    )
    arch = PVTV2Config(**DEMO_ARCH, num_classes=len(pipes.class_names), img_size=args.image_size)
    return train(
        arch,
        dataset=pipes,
        output=os.path.join(output, "run"),
        epochs=args.epochs,
        recipe=Recipe(base_lr=DEMO_LR, warmup_epochs=1),
        drop_path_rate=0.0,
        resume=False,
        overwrite=True,  # a rerun retrains: the folder is the demo's own (prepare_output)
        callbacks=[TimeBudget(args.time_budget * 60)],
        verbose=2,
    )


def _evaluate_and_export(
    args: argparse.Namespace, result: TrainResult, dataset: str, data_dir: str, output: str
) -> tuple[list[Any], int]:
    """The comparison rows (Keras first) on the held-out test split, and its image count."""
    _step("3/4 evaluate on the held-out test split (never seen in training or model selection)")
    test_images, test_labels = to_numpy(
        eval_pipeline(dataset, "test", args.image_size, 100, data_dir=data_dir)
    )
    calibration, _ = to_numpy(
        eval_pipeline(dataset, "train", args.image_size, 100, data_dir=data_dir), limit=200
    )
    _step("4/4 export SavedModel + TFLite (float32, int8) and verify each against Keras")
    keras.utils.set_random_seed(0)
    rows = export_and_compare(
        result.model,
        os.path.join(output, "export"),
        test_images,
        test_labels,
        calibration,
        image_size=args.image_size,
        keras_path=result.best_model_path,
        threads=args.threads,
        overwrite=True,  # only previous exports are replaced, in a folder the demo made
    )
    return rows, len(test_labels)


def _report(output: str, summary: dict[str, Any], table: str, test_accuracy: float) -> None:
    """Write ``summary.json`` and ``summary.md``; print the summary."""
    write_json(os.path.join(output, "summary.json"), summary)
    with open(os.path.join(output, "summary.md"), "w") as handle:
        handle.write(table + "\n")
    classes = len(summary["classes"])
    print("\n=== keras-pvt demo summary ===")
    print(
        f"model: PVT-v2 ({summary['parameters']:,} parameters), {summary['image_size']}px, "
        f"{summary['epochs_run']} epochs in {summary['train_seconds'] / 60:.1f} min"
    )
    print(
        f"held-out test accuracy: {100 * test_accuracy:.1f}% on {summary['test_images']} "
        f"images ({classes} classes, chance {100 / classes:.1f}%)"
    )
    print(table)
    print(
        f"files: {output} (run/best.keras, run/history.csv, run/training_curves.png, export/, "
        f"summary.json); total {summary['total_seconds'] / 60:.1f} min"
    )


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


def _step(message: str) -> None:
    print(f"\n[demo] {message}", flush=True)
