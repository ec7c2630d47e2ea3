"""The bounds a verified export must meet per format and mode, and the figures they are checked on.

Relative error of an output: ``||export - keras|| / ||keras - mean(keras)||`` over all its elements,
the mean taken along the last axis (classes, channels; no centring when that axis has one entry).
Centring makes a file that outputs the Keras rows' means (uniform probabilities, a zeroed head)
score 1.0 however close to uniform the Keras outputs are.

A near tie is an image (a pixel, for a segmenter) whose Keras top-1 margin (best minus second-best
score) is at most sqrt(2) x e x the norm of its centred scores, e = 4 x the file's relative error
(per image errors spread around it), at most the bound: an error of relative size e on that image
can flip its top-1 (two scores move by at most sqrt(2) x the error's norm). Where near ties alone
could pull the agreement below its minimum (outputs close to uniform at the file's error, e.g.
random weights in int8), the agreement cannot judge the file (INCONCLUSIVE) and the relative error
decides.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NEAR_TIE_FACTOR = float(np.sqrt(2.0))
ERROR_SPREAD = 4.0  # a near tie's error: this many times the relative error (per-image tails)


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What a verified export must meet: the largest relative error of any output, and the smallest
    top-1 agreement (classifiers), pixel agreement (segmenters) or detection agreement (detectors,
    `keras_pvt.export.detections`) with the Keras model."""

    max_relative_error: float
    min_top1: float
    min_pixel_agreement: float
    min_detection_agreement: float


# (format, mode) -> default bounds, between what healthy and broken files measured (docs/deployment.md).
DEFAULT_BOUNDS: dict[tuple[str, str], Bounds] = {
    ("saved_model", "float32"): Bounds(1e-4, 0.999, 0.999, 0.99),
    ("tflite", "none"): Bounds(1e-4, 0.999, 0.999, 0.99),
    ("tflite", "float16"): Bounds(1e-2, 0.99, 0.99, 0.95),
    ("tflite", "dynamic"): Bounds(0.15, 0.95, 0.95, 0.8),
    ("tflite", "int8"): Bounds(0.25, 0.85, 0.9, 0.7),
    ("tflite", "int8-full"): Bounds(0.25, 0.85, 0.9, 0.7),
    ("openvino", "float32"): Bounds(1e-4, 0.999, 0.999, 0.99),
    ("openvino", "float16"): Bounds(1e-2, 0.99, 0.99, 0.95),
    ("openvino", "bfloat16"): Bounds(0.1, 0.95, 0.95, 0.8),
    ("onnx", "float32"): Bounds(1e-4, 0.999, 0.999, 0.99),
}


def default_bounds(format: str, mode: str) -> Bounds:
    """The default `Bounds` of `format` ("saved_model", "tflite", "openvino", "onnx") in `mode` (the
    TFLite quantization mode, the OpenVINO precision, "float32" for a SavedModel or ONNX file)."""
    try:
        return DEFAULT_BOUNDS[(format, mode)]
    except KeyError:
        known = ", ".join(f"{f}/{m}" for f, m in DEFAULT_BOUNDS)
        raise ValueError(f"No default bounds for {format}/{mode}; known: {known}.") from None


def resolve_bounds(
    format: str,
    mode: str,
    tolerance: float | str | None = None,
    min_top1: float | str | None = None,
    min_pixel_agreement: float | str | None = None,
    min_detection_agreement: float | str | None = None,
) -> Bounds:
    """The bounds to check: each given value, the mode's default where it is None (or "auto")."""
    default = default_bounds(format, mode)
    values = {
        "tolerance": (tolerance, default.max_relative_error),
        "min_top1": (min_top1, default.min_top1),
        "min_pixel_agreement": (min_pixel_agreement, default.min_pixel_agreement),
        "min_detection_agreement": (min_detection_agreement, default.min_detection_agreement),
    }
    chosen = {}
    for name, (value, fallback) in values.items():
        if value is None or (isinstance(value, str) and value == "auto"):
            chosen[name] = fallback
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            chosen[name] = float(value)
        else:
            raise ValueError(f"`{name}` must be a number or None (the mode's default), got {value!r}.")
    if not chosen["tolerance"] >= 0:
        raise ValueError(f"`tolerance` (the largest relative error) must be >= 0, got {tolerance!r}.")
    return Bounds(
        chosen["tolerance"],
        chosen["min_top1"],
        chosen["min_pixel_agreement"],
        chosen["min_detection_agreement"],
    )


def relative_error(reference: np.ndarray, exported: np.ndarray) -> float:
    """``||exported - reference|| / ||reference - mean(reference)||`` (mean along the last axis)."""
    reference = np.asarray(reference, np.float64)
    diff = np.nan_to_num(np.asarray(exported, np.float64) - reference, nan=np.inf)
    spread = reference - reference.mean(-1, keepdims=True) if reference.shape[-1] > 1 else reference
    numerator, denominator = float(np.linalg.norm(diff)), float(np.linalg.norm(spread))
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else float("inf")
    return numerator / denominator


def tie_error(measured: float, bound: float) -> float:
    """The relative error a near tie is judged at: `ERROR_SPREAD` x the measured one, at most `bound`."""
    return float(min(bound, ERROR_SPREAD * measured))


def near_tie_fraction(reference: np.ndarray, error: float) -> float | None:
    """Fraction of rows (all axes but the last) whose top-1 margin is at most `NEAR_TIE_FACTOR` x
    `error` x the norm of the centred row; None for fewer than 2 classes."""
    classes = reference.shape[-1]
    if classes < 2 or reference.size == 0:
        return None
    rows = np.asarray(reference, np.float64).reshape(-1, classes)
    top_two = np.partition(rows, classes - 2, axis=-1)[:, -2:]
    margin = top_two[:, 1] - top_two[:, 0]
    spread = np.linalg.norm(rows - rows.mean(-1, keepdims=True), axis=-1)
    return float(np.mean(margin <= NEAR_TIE_FACTOR * error * spread))


def agreement_undecided(near_ties: float | None, minimum: float) -> bool:
    """Whether near ties alone could pull an agreement below `minimum`: it cannot judge the file."""
    return near_ties is not None and near_ties > max(0.0, 1.0 - minimum)
