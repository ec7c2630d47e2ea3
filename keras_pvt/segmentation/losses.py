"""Pixel-wise cross-entropy of a segmenter's logits against integer masks, with an ignore label.

Keras' sparse categorical cross-entropy with its ignore class, on every backend, once the masks are
checked and the logits fit them. Logits smaller than the masks (a segmenter built with
``logits_stride=4``) are resized bilinearly (align_corners=False) to the masks' size first, as
mmseg's decode heads do in their loss and at evaluation. Masks that do not fit the logits (labels
outside the classes other than the ignore label, fractional float masks, another batch size or
aspect ratio) are refused (`mask_checks`).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.segmentation.mask_checks import checked_masks

IGNORE_LABEL = 255  # mmseg's ignore_index: padding, and "other" after reduce_zero_label


def labels_and_logits(
    y_true: Any, y_pred: Any, ignore_label: int, user: str = "SegmentationCrossEntropy"
) -> tuple[Any, Any, Any]:
    """``(labels int32 (B, H, W) with ignored pixels set to 0, logits float32 (B, H, W, C) at the
    labels' size, valid (B, H, W) bool)``, once `mask_checks` found the masks to fit the logits
    (`user` names the caller in its errors); a pixel is valid when its label is not `ignore_label`."""
    labels, logits = checked_masks(y_true, y_pred, ignore_label, user)
    logits = resize_to_labels(logits, labels)
    num_classes = logits.shape[-1]
    valid = ops.logical_and(  # the range again: XLA drops graph assertions
        ops.logical_and(labels >= 0, labels < num_classes), ops.not_equal(labels, ignore_label)
    )
    return ops.where(valid, labels, 0), logits, valid


def resize_to_labels(logits: Any, labels: Any) -> Any:
    """`logits` (B, h, w, C) resized bilinearly (half-pixel centres, no antialiasing: PyTorch's
    ``align_corners=False``) to the spatial size of `labels` (B, H, W); unchanged when equal."""
    size = _spatial_size(labels)
    if tuple(logits.shape[1:3]) == size and None not in size:
        return logits
    if None in size:  # unknown while tracing: take it from the tensor
        dynamic = ops.shape(labels)
        size = (dynamic[1], dynamic[2])
    return ops.image.resize(logits, size, interpolation="bilinear", antialias=False)


@keras.saving.register_keras_serializable(package="keras_pvt")
class SegmentationCrossEntropy(keras.losses.SparseCategoricalCrossentropy):
    """Keras' ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_label)`` on
    checked masks: the softmax cross-entropy of the pixels whose label is not `ignore_label`,
    averaged over them across the batch (0 for a batch without one; under `tf.distribute`, per
    replica, then averaged over the replicas).

    ``y_true``: integer masks (B, H, W) (or (B, H, W, 1)); ``y_pred``: logits (B, h, w, classes),
    resized to (H, W) when smaller. This is PyTorch's ``F.cross_entropy(ignore_index=...)`` mean
    (mmseg's ``avg_non_ignore=True``; mmseg's default divides by every pixel, ignored ones too).
    Masks Keras' loss would take silently (other labels outside ``[0, classes)``, fractional float
    masks, another batch size or aspect ratio) are refused (`ValueError`, or a failing assertion in
    a graph). Sample weights are refused: mark pixels to leave out with the ignore label.
    """

    def __init__(
        self, ignore_label: int = IGNORE_LABEL, name: str = "segmentation_cross_entropy", dtype: Any = None
    ) -> None:
        self.ignore_label = int(ignore_label)
        super().__init__(from_logits=True, ignore_class=self.ignore_label, name=name, dtype=dtype)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            raise ValueError(
                "SegmentationCrossEntropy takes no sample weights; give the pixels to leave out the "
                f"ignore label ({self.ignore_label}) instead."
            )
        return super().__call__(y_true, y_pred)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels, logits, valid = labels_and_logits(y_true, y_pred, self.ignore_label)
        # labels out of range (past the assertions XLA drops) are ignored too
        labels = ops.where(valid, labels, self.ignore_label)
        return keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True, ignore_class=self.ignore_label
        )

    def get_config(self) -> dict[str, Any]:
        # the configs trained models hold: the mean over valid pixels is the only reduction
        return {"name": self.name, "ignore_label": self.ignore_label}


def _spatial_size(labels: Any) -> tuple[int | None, int | None]:
    height, width = labels.shape[1], labels.shape[2]
    return (None if height is None else int(height), None if width is None else int(width))
