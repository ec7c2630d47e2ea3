"""Export a trained model (SavedModel, TFLite float / int8 / ...) and compare every format with the
Keras model on held-out data: a classifier's accuracy and top-1 agreement (`export_and_compare`), a
segmenter's mIoU and pixel agreement (`export_and_compare_segmenter`), each with file size and
latency. Every file is verified by the export package as it is written (a broken one fails)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL, confusion_matrix, mean_iou, pixel_accuracy
from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES
from keras_pvt.export.tflite import TFLITE_FORMATS
from keras_pvt.export.verify import VerificationReport, median_ms

DEFAULT_FORMATS = ("saved_model", "tflite_float", "tflite_int8")
INT8_FORMATS = ("tflite_int8", "tflite_int8_full")  # calibrated on the training images
CHUNK = 100


@dataclasses.dataclass
class FormatResult:
    """One row of a classifier's comparison."""

    format: str
    path: str | None
    size_bytes: int
    accuracy: float
    latency_ms: float
    max_abs_diff: float | None
    top1_agreement: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SegmentationFormatResult:
    """One row of a segmenter's comparison: mIoU and pixel accuracy against ground truth, agreement
    with Keras."""

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


def export_formats(
    model: Any,
    output: str,
    formats: Sequence[str],
    images: np.ndarray,
    calibration: np.ndarray,
    image_size: int | Sequence[int],
    *,
    threads: int,
    runs: int,
    overwrite: bool,
    masks: np.ndarray | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
) -> list[tuple[str, str, VerificationReport]]:
    """(format, path, verification report) of `model` exported to each of `formats` under `output`.

    Each file is verified on `images` (with `masks`: per pixel, against them). Formats:
    "saved_model", "tflite_float", "tflite_float16", "tflite_dynamic", "tflite_int8" (mixed int8),
    "tflite_int8_full" (every op integer); the int8 ones calibrate on `calibration`. `overwrite`
    replaces previous exports of the same names only (see `keras_pvt.export`).
    """
    from keras_pvt.export import convert_to_tflite, export_and_verify_saved_model

    unknown = sorted(set(formats) - {"saved_model", *TFLITE_FORMATS})
    if unknown:
        raise ValueError(
            f"Unknown export format(s) {unknown}; choose from saved_model, {', '.join(TFLITE_FORMATS)}."
        )
    dense = None if masks is None else True
    os.makedirs(output, exist_ok=True)
    exported = []
    for name in formats:
        if name == "saved_model":
            path = os.path.join(output, "saved_model")
            report = export_and_verify_saved_model(
                model,
                path,
                images,
                masks=masks,
                image_size=image_size,
                runs=runs,
                dense=dense,
                ignore_label=ignore_label,
                overwrite=overwrite,
            )
        else:
            path = os.path.join(output, f"model_{TFLITE_FORMATS[name]}.tflite")
            report = convert_to_tflite(
                model,
                path,
                quantize=TFLITE_FORMATS[name],
                representative_data=calibration if name in INT8_FORMATS else None,
                image_size=image_size,
                verify_images=images,
                verify_masks=masks,
                threads=threads,
                runs=runs,
                dense=dense,
                ignore_label=ignore_label,
                overwrite=overwrite,
            ).verification
        exported.append((name, path, report))
    return exported


def keras_latency_ms(model: Any, image: np.ndarray, runs: int) -> float:
    """Median time of one compiled batch-1 inference call of the Keras model."""
    import tensorflow as tf

    serve = tf.function(lambda x: model(x, training=False), autograph=False)
    single = tf.constant(np.asarray(image, np.float32)[None])
    return median_ms(lambda: serve(single), runs)


def file_size(path: str | None) -> int:
    """Bytes of the file at `path`, 0 when there is none."""
    return os.path.getsize(path) if path and os.path.isfile(path) else 0


# ---------------------------------------------------------------------------------- classifiers
def accuracy_of(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `predict` (images -> class scores), evaluated in chunks."""
    scores = np.concatenate([predict(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)])
    return float(np.mean(np.argmax(scores, axis=-1) == labels))


def export_and_compare(
    model: Any,
    output: str,
    images: np.ndarray,
    labels: np.ndarray,
    calibration: np.ndarray,
    image_size: int,
    formats: Sequence[str] = DEFAULT_FORMATS,
    keras_path: str | None = None,
    threads: int = 2,
    runs: int = 20,
    overwrite: bool = False,
) -> list[FormatResult]:
    """Export the classifier `model` to each of `formats` under `output` (`export_formats`, verified
    on the first images) and measure each format's accuracy on ``(images, labels)`` (model-ready
    float32); the Keras model's row first."""
    import tensorflow as tf

    serve = tf.function(lambda x: model(x, training=False))
    rows = [
        FormatResult(
            format="keras",
            path=keras_path,
            size_bytes=file_size(keras_path),
            accuracy=accuracy_of(lambda x: np.asarray(serve(tf.constant(x))), images, labels),
            latency_ms=keras_latency_ms(model, images[0], runs),
            max_abs_diff=0.0,
            top1_agreement=1.0,
        )
    ]
    sample = images[:DEFAULT_VERIFY_IMAGES]
    exports = export_formats(
        model,
        output,
        formats,
        sample,
        calibration,
        image_size,
        threads=threads,
        runs=runs,
        overwrite=overwrite,
    )
    for name, path, report in exports:
        rows.append(
            FormatResult(
                format=name,
                path=path,
                size_bytes=report.size_bytes,
                accuracy=accuracy_of(_predictor(name, path, threads), images, labels),
                latency_ms=report.latency_ms_median,
                max_abs_diff=report.max_abs_diff_overall,
                top1_agreement=report.top1_agreement,
            )
        )
    return rows


def format_table(rows: Sequence[FormatResult]) -> str:
    """A Markdown table of a classifier's comparison."""
    header = ("format", "size", "accuracy", "latency (batch 1)", "max abs diff vs Keras", "top-1 agreement")
    return markdown_table(
        header,
        [
            (
                row.format,
                size_text(row.size_bytes),
                f"{100 * row.accuracy:.1f}%",
                f"{row.latency_ms:.2f} ms",
                "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.2g}",
                "-" if row.top1_agreement is None else f"{100 * row.top1_agreement:.1f}%",
            )
            for row in rows
        ],
    )


def _predictor(name: str, path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """images -> scores of the exported file at `path`."""
    if name != "saved_model":
        from keras_pvt.export import TFLiteRunner

        runner = TFLiteRunner(path, threads)
        return lambda x: next(iter(runner(x).values()))
    import tensorflow as tf

    from keras_pvt.export import SIGNATURE_KEY

    serve = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    return lambda x: np.asarray(next(iter(serve(images=tf.constant(x)).values())))


# ---------------------------------------------------------------------------------- segmenters
def baseline_scores(
    masks: np.ndarray, num_classes: int, ignore_label: int | None = DEFAULT_IGNORE_LABEL
) -> tuple[float, float]:
    """(mIoU, pixel accuracy) of the trivial segmenter that calls every pixel background (0)."""
    confusion = confusion_matrix(masks, np.zeros_like(masks), num_classes, ignore_label)
    return mean_iou(confusion), pixel_accuracy(confusion)


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
    """Export the segmenter `model` to each of `formats` under `output`, each verified on
    ``(images, masks)`` (model-ready float32 images, integer masks), and return the rows, Keras
    first. Each export's own verification holds its row's numbers; a file that fails it (e.g.
    pixel agreement below the mode's minimum) raises `VerificationError`."""
    exports = export_formats(
        model,
        output,
        formats,
        images,
        calibration,
        image_size,
        threads=threads,
        runs=runs,
        overwrite=overwrite,
        masks=masks,
        ignore_label=ignore_label,
    )
    keras = dataclasses.replace(
        exports[0][2],
        path=keras_path,
        size_bytes=file_size(keras_path),
        latency_ms_median=keras_latency_ms(model, images[0], runs),
    )
    return [_segmentation_row("keras", keras, keras=True)] + [
        _segmentation_row(name, report) for name, _, report in exports
    ]


def format_segmentation_table(rows: Sequence[SegmentationFormatResult]) -> str:
    """A Markdown table of a segmenter's comparison."""
    header = (
        "format",
        "size",
        "mIoU",
        "pixel accuracy",
        "pixel agreement with Keras",
        "max abs diff",
        "latency (batch 1)",
    )
    return markdown_table(
        header,
        [
            (
                row.format,
                size_text(row.size_bytes),
                f"{100 * row.mean_iou:.1f}%",
                f"{100 * row.pixel_accuracy:.1f}%",
                f"{100 * row.pixel_agreement:.2f}%",
                f"{row.max_abs_diff:.2g}",
                f"{row.latency_ms:.2f} ms",
            )
            for row in rows
        ],
    )


def _segmentation_row(name: str, report: VerificationReport, keras: bool = False) -> SegmentationFormatResult:
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


def size_text(size_bytes: int) -> str:
    """A file size in MiB, "-" for none."""
    return f"{size_bytes / 2**20:.2f} MiB" if size_bytes else "-"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of `rows` (cells already formatted) under `header`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
