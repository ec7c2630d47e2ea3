"""Export a trained classifier (SavedModel, TFLite float / int8 / ...) and compare every format's
held-out accuracy, file size and latency with the Keras model. Uses `keras_pvt.export`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES
from keras_pvt.export.tflite import TFLITE_FORMATS

DEFAULT_FORMATS = ("saved_model", "tflite_float", "tflite_int8")
CHUNK = 100


@dataclasses.dataclass
class FormatResult:
    """One row of the comparison."""

    format: str
    path: str | None
    size_bytes: int
    accuracy: float
    latency_ms: float
    max_abs_diff: float | None
    top1_agreement: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def accuracy_of(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `predict` (images -> class scores), evaluated in chunks."""
    scores = np.concatenate([predict(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)])
    return float(np.mean(np.argmax(scores, axis=-1) == labels))


def keras_row(
    model: Any, images: np.ndarray, labels: np.ndarray, path: str | None = None, runs: int = 20
) -> FormatResult:
    """The reference row: the Keras model itself (latency of a compiled batch-1 call)."""
    import tensorflow as tf

    from keras_pvt.export import median_ms

    serve = tf.function(lambda x: model(x, training=False))
    single = tf.constant(images[:1])
    return FormatResult(
        format="keras",
        path=path,
        size_bytes=os.path.getsize(path) if path and os.path.isfile(path) else 0,
        accuracy=accuracy_of(lambda x: np.asarray(serve(tf.constant(x))), images, labels),
        latency_ms=median_ms(lambda: serve(single), runs),
        max_abs_diff=0.0,
        top1_agreement=1.0,
    )


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
    """Export `model` to each of `formats` under `output`, verify each file (the export package
    fails on broken files), and measure accuracy on ``(images, labels)`` (model-ready float32).

    `calibration`: model-ready training images for int8 calibration. Formats: "saved_model",
    "tflite_float", "tflite_float16", "tflite_dynamic", "tflite_int8" (mixed int8),
    "tflite_int8_full" (every op integer). `overwrite` replaces previous exports of the same names
    (nothing else is ever replaced; see `keras_pvt.export`).
    """
    from keras_pvt.export import TFLiteRunner, convert_to_tflite, export_and_verify_saved_model

    unknown = sorted(set(formats) - {"saved_model", *TFLITE_FORMATS})
    if unknown:
        raise ValueError(
            f"Unknown export format(s) {unknown}; choose from saved_model, {', '.join(TFLITE_FORMATS)}."
        )
    os.makedirs(output, exist_ok=True)
    sample = images[:DEFAULT_VERIFY_IMAGES]
    rows = [keras_row(model, images, labels, keras_path, runs)]
    for name in formats:
        if name == "saved_model":
            path = os.path.join(output, "saved_model")
            report = export_and_verify_saved_model(
                model, path, sample, image_size=image_size, runs=runs, overwrite=overwrite
            )
            predict = _saved_model_predictor(path)
        else:
            path = os.path.join(output, f"model_{TFLITE_FORMATS[name]}.tflite")
            result = convert_to_tflite(
                model,
                path,
                quantize=TFLITE_FORMATS[name],
                representative_data=calibration if name in ("tflite_int8", "tflite_int8_full") else None,
                image_size=image_size,
                verify_images=sample,
                threads=threads,
                runs=runs,
                overwrite=overwrite,
            )
            report = result.verification
            runner = TFLiteRunner(path, threads)
            predict = lambda x, r=runner: next(iter(r(x).values()))  # noqa: E731
        rows.append(
            FormatResult(
                format=name,
                path=path,
                size_bytes=report.size_bytes,
                accuracy=accuracy_of(predict, images, labels),
                latency_ms=report.latency_ms_median,
                max_abs_diff=report.max_abs_diff_overall,
                top1_agreement=report.top1_agreement,
            )
        )
    return rows


def format_table(rows: Sequence[FormatResult]) -> str:
    """A Markdown table of the comparison."""
    lines = [
        "| format | size | accuracy | latency (batch 1) | max abs diff vs Keras | top-1 agreement |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = f"{row.size_bytes / 2**20:.2f} MiB" if row.size_bytes else "-"
        diff = "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.2g}"
        agree = "-" if row.top1_agreement is None else f"{100 * row.top1_agreement:.1f}%"
        lines.append(
            f"| {row.format} | {size} | {100 * row.accuracy:.1f}% | {row.latency_ms:.2f} ms "
            f"| {diff} | {agree} |"
        )
    return "\n".join(lines)


def _saved_model_predictor(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    from keras_pvt.export import SIGNATURE_KEY

    serve = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    return lambda x: np.asarray(next(iter(serve(images=tf.constant(x)).values())))
