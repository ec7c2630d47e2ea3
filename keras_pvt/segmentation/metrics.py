"""Segmentation metrics from per-pixel logits and integer masks: mean IoU and pixel accuracy.

Both follow mmseg's ``IoUMetric`` (``mIoU``, ``aAcc``): the counts are accumulated over every batch
since the last reset (one epoch in `model.fit`), pixels with the ignore label are left out, logits
smaller than the masks are resized bilinearly to them first. Masks that do not fit the logits (other
labels outside ``[0, classes)``, fractional float masks, another batch size or aspect ratio) are
refused, as by the loss (`mask_checks`). Written with `keras.ops` only (every backend); the counts
are summed over replicas under `tf.distribute`. They are float32 variables (exact up to 2**24 per
cell, then relative error ~1e-7), as in `keras.metrics.MeanIoU`.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_pvt.segmentation.losses import IGNORE_LABEL, labels_and_logits


def _refuse_weights(metric: str, sample_weight: Any) -> None:
    if sample_weight is not None:
        raise ValueError(f"{metric} takes no sample weights; give the pixels to leave out the ignore label.")


@keras.saving.register_keras_serializable(package="keras_pvt")
class MeanIoU(keras.metrics.Metric):
    """Mean intersection-over-union over the classes, from an accumulated confusion matrix.

    IoU of class c = TP / (TP + FP + FN) over all pixels seen; a class absent from both the labels
    and the predictions (union 0) has no IoU (NaN) and is left out of the mean (mmseg's
    ``np.nanmean``). `result` is 0 before any pixel was seen. `per_class_iou()` gives the
    per-class values as a NumPy array.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int = IGNORE_LABEL,
        name: str = "mean_iou",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(
                f"MeanIoU: num_classes must be an integer >= 1 (the segmenter's), got {num_classes!r}."
            )
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float32",
            aggregation="sum",
            name="confusion_matrix",
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add the (label row, prediction column) counts of this batch."""
        _refuse_weights("MeanIoU", sample_weight)
        classes = tuple(ops.shape(y_pred))[-1]
        if classes != self.num_classes:
            raise ValueError(
                f"MeanIoU(num_classes={self.num_classes}) got logits with {classes} classes "
                f"(shape {tuple(ops.shape(y_pred))}). Give MeanIoU the segmenter's class count."
            )
        labels, logits, valid = labels_and_logits(y_true, y_pred, self.ignore_label, "MeanIoU")
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        cells = ops.reshape(labels * self.num_classes + predicted, (-1,))
        counts = ops.segment_sum(
            ops.reshape(ops.cast(valid, "float32"), (-1,)), cells, num_segments=self.num_classes**2
        )
        self.confusion.assign_add(ops.reshape(counts, (self.num_classes, self.num_classes)))

    def _iou(self) -> tuple[Any, Any]:
        """(IoU per class with 0 where the union is empty, whether the union is non-empty)."""
        confusion = ops.convert_to_tensor(self.confusion)
        true_positives = ops.diagonal(confusion)
        union = ops.sum(confusion, axis=0) + ops.sum(confusion, axis=1) - true_positives
        present = union > 0
        return ops.where(present, true_positives / ops.maximum(union, 1.0), 0.0), present

    def result(self) -> Any:
        iou, present = self._iou()
        seen = ops.sum(ops.cast(present, "float32"))
        return ops.sum(iou) / ops.maximum(seen, 1.0)

    def per_class_iou(self) -> np.ndarray:
        """IoU of each class (float64 NumPy array), NaN for a class never labelled nor predicted."""
        iou, present = self._iou()
        iou = ops.convert_to_numpy(iou).astype(np.float64)
        return np.where(ops.convert_to_numpy(present), iou, np.nan)

    def reset_state(self) -> None:
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), "float32"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label}


@keras.saving.register_keras_serializable(package="keras_pvt")
class PixelAccuracy(keras.metrics.Metric):
    """Correctly classified pixels / valid pixels over all pixels seen (mmseg's ``aAcc``); 0 before
    any valid pixel was seen."""

    def __init__(self, ignore_label: int = IGNORE_LABEL, name: str = "pixel_accuracy", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_label = int(ignore_label)
        self.correct = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", aggregation="sum", name="correct"
        )
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", aggregation="sum", name="total"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        _refuse_weights("PixelAccuracy", sample_weight)
        labels, logits, valid = labels_and_logits(y_true, y_pred, self.ignore_label, "PixelAccuracy")
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        valid = ops.cast(valid, "float32")
        self.correct.assign_add(ops.sum(ops.cast(ops.equal(predicted, labels), "float32") * valid))
        self.total.assign_add(ops.sum(valid))

    def result(self) -> Any:
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self) -> None:
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ignore_label": self.ignore_label}
