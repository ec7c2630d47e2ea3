"""The steps of `keras-pvt demo --task segmentation`: train a small Semantic FPN on the embedded
`keras_pvt_seg_shapes` dataset, report held-out mIoU and pixel accuracy against the trivial
all-background baseline, export a SavedModel and TFLite files (float32, int8), verify each one per
pixel on the held-out images and tabulate mIoU, pixel agreement, size and latency per format."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from keras_pvt.cli.demo_common import DEMO_ARCH, demo_pipelines, export_and_verify, report, start_demo, step
from keras_pvt.config import PVTV2Config
from keras_pvt.data import make_segmentation_pipelines, seg_shapes_config, segmentation_eval_pipeline
from keras_pvt.export.compare import (
    SegmentationFormatResult,
    baseline_scores,
    export_and_compare_segmenter,
    format_segmentation_table,
)
from keras_pvt.training.callbacks import TimeBudget
from keras_pvt.training.segmentation import SegmentationTrainResult, train_segmentation
from keras_pvt.training.segmentation_recipe import SegmentationRecipe

DEFAULTS = {
    "output": "demo_output_segmentation",
    "image_size": 96,
    "epochs": 20,
    "batch_size": 16,
    "train_size": 1600,
    "test_size": 200,
    "time_budget": 5.0,
}
# A light head for 2 CPU cores (the paper's: 256 and 128 channels).
DEMO_HEAD = {"fpn_channels": 64, "head_channels": 32}
# From scratch, so well above the paper's fine-tuning rate (2e-4 per 16 images).
DEMO_RECIPE = SegmentationRecipe(base_lr=3e-3, warmup_epochs=1)
CALIBRATION_IMAGES = 100
EVAL_BATCH = 50


def run(args: argparse.Namespace) -> int:
    """The whole segmentation demo; `args` as `keras-pvt demo` parses them, defaults filled in."""
    output, data_dir = start_demo(args)
    start = time.perf_counter()
    config = seg_shapes_config(args.image_size, args.train_size, args.test_size)
    dataset = f"keras_pvt_seg_shapes/{config.name}"
    result = _train(args, dataset, data_dir, output)
    train_seconds = time.perf_counter() - start
    images, masks, calibration = _held_out(args, dataset, data_dir)
    rows = _export(args, result, images, masks, calibration, output)
    baseline_iou, baseline_accuracy = baseline_scores(masks, result.num_classes)
    summary = {
        "task": "segmentation",
        "dataset": dataset,
        "classes": result.class_names,
        "image_size": args.image_size,
        "parameters": result.model.count_params(),
        "epochs_run": result.epochs_run,
        "best_val_mean_iou": result.best_val_mean_iou,
        "test_images": len(images),
        "test_mean_iou": rows[0].mean_iou,
        "test_pixel_accuracy": rows[0].pixel_accuracy,
        "baseline_mean_iou": baseline_iou,
        "baseline_pixel_accuracy": baseline_accuracy,
        "formats": [row.to_dict() for row in rows],
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    scores = (
        f"held-out test mIoU: {100 * summary['test_mean_iou']:.1f}%, pixel accuracy "
        f"{100 * summary['test_pixel_accuracy']:.1f}% on {summary['test_images']} images "
        f"({len(summary['classes'])} classes); all-background baseline: mIoU "
        f"{100 * baseline_iou:.1f}%, pixel accuracy {100 * baseline_accuracy:.1f}%"
    )
    title = "keras-pvt segmentation demo summary"
    model = "Semantic FPN on a small PVT-v2"
    report(output, summary, format_segmentation_table(rows), title=title, model=model, scores=scores)
    return 0


def _train(args: argparse.Namespace, dataset: str, data_dir: str, output: str) -> SegmentationTrainResult:
    pipes = demo_pipelines(make_segmentation_pipelines, args, dataset, data_dir, scale_range=(0.75, 1.5))
    step(
        f"2/4 train: Semantic FPN on a small PVT-v2 at {args.image_size}px, {args.epochs} epochs "
        f"(budget {args.time_budget:g} min)"
    )
    return train_segmentation(
        PVTV2Config(**DEMO_ARCH, img_size=args.image_size),
        dataset=pipes,
        recipe=DEMO_RECIPE,
        output=os.path.join(output, "run"),
        epochs=args.epochs,
        drop_path_rate=0.0,
        dropout=0.0,
        resume=False,
        overwrite=True,  # a rerun retrains: the folder is the demo's own (prepare_output)
        callbacks=[TimeBudget(args.time_budget * 60)],
        verbose=2,
        **DEMO_HEAD,
    )


def _held_out(args: argparse.Namespace, dataset: str, data_dir: str) -> tuple[np.ndarray, ...]:
    """The test split's images and masks (never seen in training or model selection), and
    training images to calibrate int8."""
    step("3/4 evaluate on the held-out test split (never seen in training or model selection)")
    images, masks = _arrays(segmentation_eval_pipeline(dataset, "test", **_eval_options(args, data_dir)))
    train = segmentation_eval_pipeline(
        dataset, f"train[:{min(CALIBRATION_IMAGES, args.train_size)}]", **_eval_options(args, data_dir)
    )
    return images, masks, _arrays(train)[0]


def _eval_options(args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    return {"image_size": args.image_size, "batch_size": EVAL_BATCH, "data_dir": data_dir}


def _arrays(pipeline: Any) -> tuple[np.ndarray, np.ndarray]:
    batches = list(pipeline.as_numpy_iterator())
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _export(
    args: argparse.Namespace,
    result: SegmentationTrainResult,
    images: np.ndarray,
    masks: np.ndarray,
    calibration: np.ndarray,
    output: str,
) -> list[SegmentationFormatResult]:
    step("4/4 export SavedModel + TFLite (float32, int8) and verify each per pixel against Keras")
    return export_and_verify(export_and_compare_segmenter, result, images, masks, calibration, args, output)
