"""RetinaNet's training losses as mmdet's 1x config: sigmoid focal loss (gamma 2, alpha 0.25) on the
class logits and L1 on the box deltas, both summed over the anchors and divided by mmdet's average
factor, the number of positive anchors of each image (at least 1) summed over the batch.

Written with `keras.ops` (every backend, any graph). The targets are those of
`keras_pvt.data.det_targets`: per anchor a label (a class ``0 .. C - 1``, `BACKGROUND` -1 or
`IGNORE` -2) and, for the box loss, the encoded deltas with that label as a fifth column.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.detection.assigner import IGNORED, NEGATIVE

BACKGROUND = NEGATIVE  # label of an anchor that is background
IGNORE = IGNORED  # label of an anchor that neither loss sees
FLOAT32_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps, mmdet's guard against 0


def average_factor(labels: Any) -> Any:
    """mmdet's ``avg_factor``: per image the positive anchors (at least 1), summed over the batch."""
    positives = ops.sum(ops.cast(labels >= 0, "float32"), axis=-1)
    return ops.sum(ops.maximum(positives, 1.0))


def focal_loss_sum(labels: Any, logits: Any, gamma: float = 2.0, alpha: float = 0.25) -> Any:
    """mmdet's ``py_sigmoid_focal_loss`` summed over the anchors that are not ignored.

    labels: ``(..., N)`` (class, -1 or -2); logits: ``(..., N, C)``.
    """
    logits = ops.convert_to_tensor(logits, "float32")
    labels = ops.cast(labels, "int32")
    num_classes = logits.shape[-1]
    target = ops.one_hot(ops.where(labels >= 0, labels, num_classes), num_classes + 1)[..., :num_classes]
    probability = ops.sigmoid(logits)
    pt = (1.0 - probability) * target + probability * (1.0 - target)  # 1 - p_t of the paper
    weight = (alpha * target + (1.0 - alpha) * (1.0 - target)) * ops.power(pt, gamma)
    cross_entropy = ops.maximum(logits, 0.0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
    counted = ops.cast(labels != IGNORE, "float32")[..., None]
    return ops.sum(cross_entropy * weight * counted)


def l1_loss_sum(labels: Any, target_deltas: Any, deltas: Any) -> Any:
    """``|deltas - targets|`` summed over the positive anchors' four deltas (mmdet's ``L1Loss``)."""
    positive = ops.cast(ops.cast(labels, "int32") >= 0, "float32")[..., None]
    difference = ops.abs(ops.convert_to_tensor(deltas, "float32") - ops.cast(target_deltas, "float32"))
    return ops.sum(difference * positive)


def _labels(y_true: Any) -> Any:
    return ops.cast(ops.round(ops.convert_to_tensor(y_true)), "int32")


@keras.saving.register_keras_serializable(package="keras_pvt")
class RetinaNetFocalLoss(keras.losses.Loss):
    """Sigmoid focal loss over every anchor not ignored, divided by mmdet's average factor.

    ``y_true``: labels ``(B, N)`` (class, `BACKGROUND` -1, `IGNORE` -2); ``y_pred``: the class
    logits ``(B, N, C)``. Returns one value per batch (mmdet's loss_cls).
    """

    def __init__(
        self, gamma: float = 2.0, alpha: float = 0.25, name: str = "retinanet_focal_loss", **kwargs: Any
    ):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = _labels(y_true)
        if len(labels.shape) == len(y_pred.shape):  # (B, N, 1)
            labels = labels[..., 0]
        total = focal_loss_sum(labels, y_pred, self.gamma, self.alpha)
        return total / (average_factor(labels) + FLOAT32_EPS)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_pvt")
class RetinaNetBoxLoss(keras.losses.Loss):
    """L1 between the predicted and target deltas of the positive anchors, divided by mmdet's
    average factor (not by 4: each anchor's four deltas add up, as mmdet's loss_bbox).

    ``y_true``: ``(B, N, 5)``, the target deltas and the anchor's label (positive when >= 0);
    ``y_pred``: the deltas ``(B, N, 4)``.
    """

    def __init__(self, name: str = "retinanet_box_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if y_true.shape[-1] != 5:
            raise ValueError(
                f"RetinaNetBoxLoss needs targets (batch, anchors, 5): the four target deltas and the "
                f"anchor's label; got {tuple(y_true.shape)}. Make them with keras_pvt.data.det_targets."
            )
        labels = _labels(y_true[..., 4])
        total = l1_loss_sum(labels, y_true[..., :4], y_pred)
        return total / (average_factor(labels) + FLOAT32_EPS)
