"""`keras-pvt demo`: the end-to-end job, offline. Train a small PVT-v2 on the embedded
`keras_pvt_shapes` dataset, report held-out accuracy, export a SavedModel and TFLite files (float
and int8), verify them, and print accuracy, file sizes and latency for every format. With
`--task segmentation`: a small Semantic FPN on `keras_pvt_seg_shapes`, held-out mIoU and pixel
accuracy against the all-background baseline, and the same exports compared per pixel. With
`--task detection`: a small RetinaNet on `keras_pvt_det_shapes`, held-out COCO AP and AP50 against
a centred mean-box baseline, and a SavedModel, a float32 TFLite detector (NMS included) and a mixed
int8 TFLite of its raw outputs, each scored by its own held-out AP.

The output folder must be new, empty, or one an earlier demo made (it holds a `.keras-pvt-demo`
marker): a rerun then replaces the demo's own files; any other folder is refused."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from keras_pvt.cli.demo_common import DEMO_ARCH, demo_pipelines, export_and_verify, report, start_demo, step
from keras_pvt.config import PVTV2Config
from keras_pvt.data import Pipelines, eval_pipeline, make_pipelines, shapes_config, to_numpy
from keras_pvt.export.compare import export_and_compare, format_table
from keras_pvt.training import Recipe, TrainResult, train
from keras_pvt.training.callbacks import TimeBudget

DEMO_LR = 1.6e-2  # per 512 images: peak 1e-3 at batch 32 (measured to train this model stably)
TASKS = ("classification", "segmentation", "detection")
# Flag defaults per task (segmentation, detection: `demo_segmentation.DEFAULTS`, `demo_detection.DEFAULTS`).
DEFAULTS = {
    "output": "demo_output",
    "image_size": 64,
    "epochs": 15,
    "batch_size": 32,
    "train_size": 3000,
    "test_size": 600,
    "time_budget": 6.0,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train, evaluate, export and verify (offline)", description=__doc__
    )
    from keras_pvt.cli.demo_detection import DEFAULTS as DETECTION
    from keras_pvt.cli.demo_segmentation import DEFAULTS as SEGMENTATION

    def default(name: str, unit: str = "") -> str:
        return (
            f"default {DEFAULTS[name]:g}{unit}; segmentation {SEGMENTATION[name]:g}{unit}; "
            f"detection {DETECTION[name]:g}{unit}"
        )

    parser.add_argument("--task", choices=TASKS, default=TASKS[0], help="default: classification")
    parser.add_argument(
        "--output",
        help=f"folder for the demo's files (default {DEFAULTS['output']}; segmentation "
        f"{SEGMENTATION['output']}; detection {DETECTION['output']})",
    )
    parser.add_argument("--image-size", type=int, help=f"image side ({default('image_size')})")
    parser.add_argument("--epochs", type=int, help=f"training epochs ({default('epochs')})")
    parser.add_argument("--batch-size", type=int, help=f"batch size ({default('batch_size')})")
    parser.add_argument("--train-size", type=int, help=f"generated training images ({default('train_size')})")
    parser.add_argument("--test-size", type=int, help=f"generated held-out images ({default('test_size')})")
    parser.add_argument(
        "--time-budget", type=float, help=f"stop training after this many minutes ({default('time_budget')})"
    )
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    parser.set_defaults(func=run)


def with_defaults(args: argparse.Namespace, defaults: dict[str, Any]) -> argparse.Namespace:
    """`args` with every flag left unset taken from the task's `defaults`."""
    values = vars(args)
    return argparse.Namespace(**{**values, **{k: v for k, v in defaults.items() if values.get(k) is None}})


def run(args: argparse.Namespace) -> int:
    if args.task == "segmentation":
        from keras_pvt.cli import demo_segmentation

        return demo_segmentation.run(with_defaults(args, demo_segmentation.DEFAULTS))
    if args.task == "detection":
        from keras_pvt.cli import demo_detection

        return demo_detection.run(with_defaults(args, demo_detection.DEFAULTS))
    args = with_defaults(args, DEFAULTS)
    output, data_dir = start_demo(args)
    start = time.perf_counter()
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
    classes = len(pipes.class_names)
    scores = (
        f"held-out test accuracy: {100 * rows[0].accuracy:.1f}% on {test_count} images "
        f"({classes} classes, chance {100 / classes:.1f}%)"
    )
    report(output, summary, format_table(rows), title="keras-pvt demo summary", model="PVT-v2", scores=scores)
    return 0


def _data(args: argparse.Namespace, dataset: str, data_dir: str) -> Pipelines:
    return demo_pipelines(make_pipelines, args, dataset, data_dir, crop_scale=(0.8, 1.0))


def _train(args: argparse.Namespace, pipes: Pipelines, output: str) -> TrainResult:
    step(
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
    step("3/4 evaluate on the held-out test split (never seen in training or model selection)")
    test_images, test_labels = to_numpy(
        eval_pipeline(dataset, "test", args.image_size, 100, data_dir=data_dir)
    )
    calibration, _ = to_numpy(
        eval_pipeline(dataset, "train", args.image_size, 100, data_dir=data_dir), limit=200
    )
    step("4/4 export SavedModel + TFLite (float32, int8) and verify each against Keras")
    rows = export_and_verify(export_and_compare, result, test_images, test_labels, calibration, args, output)
    return rows, len(test_labels)
