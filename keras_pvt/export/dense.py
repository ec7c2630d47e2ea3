"""Dense-prediction agreement: how an exported segmenter's per-pixel logits compare with Keras'.

Both sides' class maps are the argmax of their logits. Pixel agreement is the fraction of pixels
where they match; the exported file's mIoU against the Keras model takes the Keras class map as the
truth. With ground-truth masks, each side's own mIoU against them is reported too (pixels with the
ignore label excluded). NumPy only: the counts are an accumulated confusion matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_IGNORE_LABEL = 255


@dataclasses.dataclass
class DenseAgreement:
    """The per-pixel comparison of an exported segmenter with its Keras model.

    Attributes:
        num_classes: the logits' channels.
        pixels: pixels compared (all pixels of all images).
        pixel_agreement: fraction of pixels whose argmax matches the Keras model's.
        mean_iou_vs_keras: mIoU of the exported file's class maps, the Keras maps as truth.
        keras_mean_iou, export_mean_iou: each one's mIoU against ground-truth masks (None without).
        keras_pixel_accuracy, export_pixel_accuracy: the same for pixel accuracy.
    """

    num_classes: int
    pixels: int
    pixel_agreement: float
    mean_iou_vs_keras: float
    keras_mean_iou: float | None = None
    export_mean_iou: float | None = None
    keras_pixel_accuracy: float | None = None
    export_pixel_accuracy: float | None = None


def confusion_matrix(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int, ignore_label: int | None = None
) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts, rows = truth, columns = prediction.

    Pixels whose truth is `ignore_label` (or outside ``[0, num_classes)``) are not counted.
    """
    truth, predicted = np.asarray(truth).reshape(-1), np.asarray(predicted).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(f"{truth.size} true labels but {predicted.size} predicted ones.")
    keep = (truth >= 0) & (truth < num_classes)
    if ignore_label is not None:
        keep &= truth != ignore_label
    index = truth[keep].astype(np.int64) * num_classes + predicted[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """Intersection over union of every class; NaN for a class neither true nor predicted."""
    confusion = np.asarray(confusion, np.float64)
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """The mean over the classes present (in truth or prediction) of `per_class_iou`."""
    iou = per_class_iou(confusion)
    return float(np.nanmean(iou)) if np.any(np.isfinite(iou)) else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Fraction of the counted pixels predicted right."""
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def check_masks(masks: Any, logits_shape: tuple[int, ...]) -> np.ndarray:
    """`masks` as an int array ``(N, H, W)`` matching the logits' ``(N, H, W, classes)``."""
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"Ground-truth masks must hold integer class ids, got dtype {masks.dtype}.")
    if masks.shape != tuple(logits_shape[:3]):
        raise ValueError(
            f"Ground-truth masks have shape {masks.shape} but the logits {tuple(logits_shape)}: "
            "give one (H, W) mask per verification image, at the images' size."
        )
    return masks


def compare_dense(
    reference: np.ndarray,
    exported: np.ndarray,
    masks: Any = None,
    *,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
) -> DenseAgreement:
    """Compare logits ``(N, H, W, classes)`` of the Keras model (`reference`) and an export."""
    if reference.ndim != 4 or reference.shape != exported.shape:
        raise ValueError(
            f"Dense comparison needs two (N, H, W, classes) logits of one shape; got "
            f"{reference.shape} and {exported.shape}."
        )
    classes = int(reference.shape[-1])
    keras_map, export_map = reference.argmax(-1), exported.argmax(-1)
    agreement = DenseAgreement(
        num_classes=classes,
        pixels=int(keras_map.size),
        pixel_agreement=float(np.mean(keras_map == export_map)),
        mean_iou_vs_keras=mean_iou(confusion_matrix(keras_map, export_map, classes)),
    )
    if masks is not None:
        truth = check_masks(masks, reference.shape)
        keras_confusion = confusion_matrix(truth, keras_map, classes, ignore_label)
        export_confusion = confusion_matrix(truth, export_map, classes, ignore_label)
        agreement.keras_mean_iou = mean_iou(keras_confusion)
        agreement.export_mean_iou = mean_iou(export_confusion)
        agreement.keras_pixel_accuracy = pixel_accuracy(keras_confusion)
        agreement.export_pixel_accuracy = pixel_accuracy(export_confusion)
    return agreement


def dense_agreement(
    reference: Mapping[str, np.ndarray],
    exported: Mapping[str, np.ndarray],
    masks: Any,
    ignore_label: int | None,
) -> tuple[DenseAgreement | None, list[str]]:
    """`compare_dense` of a segmenter's one logits output in ``{name: array}`` form, and failures.

    None (and no failure) when the shapes differ: that is a failure of the max-diff comparison.
    """
    if len(reference) != 1 or len(exported) != 1:
        return None, [
            f"a segmenter has one logits output; the Keras model has {len(reference)}, the "
            f"export {len(exported)}."
        ]
    (ref,), (out,) = reference.values(), exported.values()
    if ref.ndim != 4:
        return None, [f"segmenter logits must be (N, H, W, classes), the model gives {ref.shape}."]
    if ref.shape != np.shape(out):
        return None, []
    return compare_dense(ref, np.asarray(out, np.float32), masks, ignore_label=ignore_label), []


def dense_failures(agreement: DenseAgreement, min_pixel_agreement: float | None) -> list[str]:
    """The failure message of a pixel agreement below `min_pixel_agreement` (if any)."""
    if min_pixel_agreement is None or agreement.pixel_agreement >= min_pixel_agreement:
        return []
    return [
        f"pixel agreement {agreement.pixel_agreement:.4f} (argmax of the logits vs the Keras "
        f"model's) is below the required {min_pixel_agreement:.4f}."
    ]


def is_dense_model(model: Any) -> bool:
    """Whether `model` is a segmenter, verified per pixel (`keras_pvt.segmentation.is_segmenter`)."""
    from keras_pvt.segmentation import is_segmenter

    return bool(is_segmenter(model))
