"""Training targets of RetinaNet's raw outputs, as mmdet's anchor head makes them (`keras.ops`).

Per image: mmdet's valid flags (an anchor counts when its centre lies inside the resized image
padded up to a multiple of 32), `max_iou_assign`, then per anchor the label (the matched box's
class, `BACKGROUND` or `IGNORE`) and the matched box encoded against the anchor (mmdet's
`DeltaXYWHBBoxCoder`, `keras_pvt.detection.box_coder`), zero where the anchor is not positive.
The two targets match the model's outputs: ``{"cls_logits": labels (B, N), "box_deltas": (B, N, 5)
deltas + label}`` for `RetinaNetFocalLoss` and `RetinaNetBoxLoss`.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_pvt.data.det_augment import PAD_DIVISOR
from keras_pvt.detection.assigner import max_iou_assign
from keras_pvt.detection.box_coder import encode


def valid_anchors(anchors: Any, image_shape: Any) -> Any:
    """bool ``(B, N)``: mmdet's valid flags for images of `image_shape` int ``(B, 2)`` (h', w')
    before padding: the anchor's centre (its grid point) inside the image padded to 32."""
    padded = ops.cast(ops.ceil(ops.cast(image_shape, "float32") / PAD_DIVISOR) * PAD_DIVISOR, "float32")
    anchors = ops.convert_to_tensor(anchors, "float32")
    centre_x = (anchors[:, 0] + anchors[:, 2]) / 2.0
    centre_y = (anchors[:, 1] + anchors[:, 3]) / 2.0
    inside_x = centre_x[None, :] < padded[:, 1:2] - 0.5
    inside_y = centre_y[None, :] < padded[:, 0:1] - 0.5
    return ops.logical_and(inside_x, inside_y)


def encode_targets(anchors: Any, boxes: Any, labels: Any, image_shape: Any) -> dict:
    """``{"cls_logits": int32 (B, N), "box_deltas": float32 (B, N, 5)}`` for a batch.

    Args:
        anchors: float32 ``(N, 4)`` (`keras_pvt.detection.anchors.anchor_boxes` of the input size).
        boxes: float32 ``(B, K, 4)`` ``x1, y1, x2, y2`` in input pixels, padded.
        labels: int ``(B, K)``, -1 where padded.
        image_shape: int ``(B, 2)``, each image's (h', w') inside the padded input.
    """
    anchors = ops.convert_to_tensor(anchors, "float32")
    boxes = ops.convert_to_tensor(boxes, "float32")
    labels = ops.cast(labels, "int32")
    # One padded row more, so that a batch without any box still has a row to gather from.
    batch = ops.shape(boxes)[0]
    boxes = ops.concatenate([boxes, ops.zeros((batch, 1, 4), "float32")], axis=1)
    labels = ops.concatenate([labels, ops.full((batch, 1), -1, "int32")], axis=1)
    matched = max_iou_assign(anchors, boxes, labels >= 0, valid_anchors(anchors, image_shape))
    index = ops.maximum(matched, 0)
    positive = matched >= 0
    matched_labels = ops.take_along_axis(labels, index, axis=1)
    anchor_labels = ops.where(positive, matched_labels, matched)
    matched_boxes = ops.take_along_axis(boxes, ops.repeat(index[..., None], 4, axis=2), axis=1)
    deltas = encode(ops.broadcast_to(anchors[None], ops.shape(matched_boxes)), matched_boxes)
    deltas = ops.where(positive[..., None], deltas, 0.0)
    box_targets = ops.concatenate([deltas, ops.cast(anchor_labels, "float32")[..., None]], axis=-1)
    return {"cls_logits": anchor_labels, "box_deltas": box_targets}
