"""Export a trained segmenter (SavedModel, TFLite float / int8 / ...) and compare every format's
held-out mIoU, pixel agreement with Keras, file size and latency. Each export's own verification
runs on the held-out images and their ground-truth masks, so its report holds the row's numbers."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL, confusion_matrix, mean_iou, pixel_accuracy
from keras_pvt.export.tflite import TFLITE_FORMATS
from keras_pvt.export.verify import VerificationReport, median_ms

DEFAULT_FORMATS = ("saved_model", "tflite_float", "tflite_int8")


@dataclasses.dataclass
class SegmentationFormatResult:
    """One row: the format's mIoU and pixel accuracy against ground truth, its agreement with Keras."""

    format: str
    path: str | None
    size_bytes: int
    mean_iou: float
    pixel_accuracy: float
    pixel_agreement: float
    max_abs_diff: float
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def baseline_scores(
    masks: np.ndarray, num_classes: int, ignore_label: int | None = DEFAULT_IGNORE_LABEL
) -> tuple[float, float]:
    """(mIoU, pixel accuracy) of the trivial segmenter that calls every pixel background (0)."""
    confusion = confusion_matrix(masks, np.zeros_like(masks), num_classes, ignore_label)
    return mean_iou(confusion), pixel_accuracy(confusion)


def keras_latency_ms(model: Any, image: np.ndarray, runs: int) -> float:
    """Median time of one compiled batch-1 inference call of the Keras model."""
    import tensorflow as tf

    serve = tf.function(lambda x: model(x, training=False), autograph=False)
    single = tf.constant(np.asarray(image, np.float32)[None])
    return median_ms(lambda: serve(single), runs)


def _row(name: str, report: VerificationReport, keras: bool = False) -> SegmentationFormatResult:
    dense = report.dense
    return SegmentationFormatResult(
        format=name,
        path=report.path,
        size_bytes=report.size_bytes,
        mean_iou=dense.keras_mean_iou if keras else dense.export_mean_iou,
        pixel_accuracy=dense.keras_pixel_accuracy if keras else dense.export_pixel_accuracy,
        pixel_agreement=1.0 if keras else dense.pixel_agreement,
        max_abs_diff=0.0 if keras else report.max_abs_diff_overall,
        latency_ms=report.latency_ms_median,
    )


def export_and_compare_segmenter(
    model: Any,
    output: str,
    images: np.ndarray,
    masks: np.ndarray,
    calibration: np.ndarray,
    image_size: int | Sequence[int],
    formats: Sequence[str] = DEFAULT_FORMATS,
    keras_path: str | None = None,
    threads: int = 2,
    runs: int = 20,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
    overwrite: bool = False,
) -> list[SegmentationFormatResult]:
    """Export `model` to each of `formats` under `output`, each verified on ``(images, masks)``
    (model-ready float32 images, integer masks), and return the rows, Keras first.

    `calibration`: model-ready training images for int8. Formats: "saved_model", "tflite_float",
    "tflite_float16", "tflite_dynamic", "tflite_int8", "tflite_int8_full". A file that fails its
    verification (e.g. pixel agreement below the mode's minimum) raises `VerificationError`.
    `overwrite` replaces previous exports of the same names only (see `keras_pvt.export`).
    """
    from keras_pvt.export import convert_to_tflite, export_and_verify_saved_model

    unknown = sorted(set(formats) - {"saved_model", *TFLITE_FORMATS})
    if unknown:
        raise ValueError(
            f"Unknown export format(s) {unknown}; choose from saved_model, {', '.join(TFLITE_FORMATS)}."
        )
    os.makedirs(output, exist_ok=True)
    reports: list[tuple[str, VerificationReport]] = []
    for name in formats:
        if name == "saved_model":
            report = export_and_verify_saved_model(
                model,
                os.path.join(output, "saved_model"),
                images,
                masks=masks,
                image_size=image_size,
                runs=runs,
                dense=True,
                ignore_label=ignore_label,
                overwrite=overwrite,
            )
        else:
            quantize = TFLITE_FORMATS[name]
            report = convert_to_tflite(
                model,
                os.path.join(output, f"model_{quantize}.tflite"),
                quantize=quantize,
                representative_data=calibration if quantize in ("int8", "int8-full") else None,
                image_size=image_size,
                verify_images=images,
                verify_masks=masks,
                threads=threads,
                runs=runs,
                dense=True,
                ignore_label=ignore_label,
                overwrite=overwrite,
            ).verification
        reports.append((name, report))
    keras = dataclasses.replace(
        reports[0][1],
        path=keras_path,
        size_bytes=os.path.getsize(keras_path) if keras_path and os.path.isfile(keras_path) else 0,
        latency_ms_median=keras_latency_ms(model, images[0], runs),
    )
    return [_row("keras", keras, keras=True), *(_row(name, report) for name, report in reports)]


def format_segmentation_table(rows: Sequence[SegmentationFormatResult]) -> str:
    """A Markdown table of the comparison."""
    lines = [
        "| format | size | mIoU | pixel accuracy | pixel agreement with Keras | max abs diff "
        "| latency (batch 1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = f"{row.size_bytes / 2**20:.2f} MiB" if row.size_bytes else "-"
        lines.append(
            f"| {row.format} | {size} | {100 * row.mean_iou:.1f}% | {100 * row.pixel_accuracy:.1f}% "
            f"| {100 * row.pixel_agreement:.2f}% | {row.max_abs_diff:.2g} | {row.latency_ms:.2f} ms |"
        )
    return "\n".join(lines)
