"""mmdet's `MaxIoUAssigner` as RetinaNet's 1x config uses it, batched, in `keras.ops`.

Per anchor: the IoU with every ground-truth box (mmdet's `bbox_overlaps`, union floored at 1e-6);
negative when the best IoU is in ``[0, neg_iou_thr)``, positive (that box) when it is at least
`pos_iou_thr`, otherwise ignored; then each box takes every anchor whose IoU with it equals its
best IoU (when that is at least `min_pos_iou`), later boxes overriding earlier ones (mmdet's
low-quality matches, ``gt_max_assign_all``). Invalid anchors (in the padding, mmdet's valid
flags) take no part and are ignored; an image without boxes has every valid anchor negative.
"""

from __future__ import annotations

from typing import Any

from keras import ops

IGNORED = -2  # matched index of an anchor left out of both losses
NEGATIVE = -1  # matched index of a background anchor
IOU_EPS = 1e-6  # mmdet's bbox_overlaps


def box_iou(boxes1: Any, boxes2: Any) -> Any:
    """IoU of ``(..., K, 4)`` and ``(..., N, 4)`` ``x1, y1, x2, y2`` boxes: ``(..., K, N)``."""
    boxes1 = ops.convert_to_tensor(boxes1, "float32")
    boxes2 = ops.convert_to_tensor(boxes2, "float32")
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])

    def side(low: int, high: int) -> Any:  # the overlap along one axis, (..., K, N)
        start = ops.maximum(boxes1[..., :, None, low], boxes2[..., None, :, low])
        end = ops.minimum(boxes1[..., :, None, high], boxes2[..., None, :, high])
        return ops.maximum(end - start, 0.0)

    overlap = side(0, 2) * side(1, 3)
    union = ops.maximum(area1[..., :, None] + area2[..., None, :] - overlap, IOU_EPS)
    return overlap / union


def max_iou_assign(
    anchors: Any,
    gt_boxes: Any,
    gt_valid: Any,
    anchor_valid: Any,
    pos_iou_thr: float = 0.5,
    neg_iou_thr: float = 0.4,
    min_pos_iou: float = 0.0,
    match_low_quality: bool = True,
) -> Any:
    """The matched box of each anchor, int32 ``(B, N)``: its index in `gt_boxes`, `NEGATIVE` or `IGNORED`.

    Args:
        anchors: float32 ``(N, 4)``, shared by the batch.
        gt_boxes: float32 ``(B, K, 4)``, padded with anything where `gt_valid` is False.
        gt_valid: bool ``(B, K)``.
        anchor_valid: bool ``(B, N)`` (mmdet's valid flags of each image).
    """
    gt_boxes = ops.convert_to_tensor(gt_boxes, "float32")
    gt_valid = ops.convert_to_tensor(gt_valid, "bool")
    anchor_valid = ops.convert_to_tensor(anchor_valid, "bool")
    overlaps = box_iou(gt_boxes, ops.convert_to_tensor(anchors, "float32")[None])  # (B, K, N)
    taking_part = ops.logical_and(gt_valid[:, :, None], anchor_valid[:, None, :])
    overlaps = ops.where(taking_part, overlaps, -1.0)
    max_overlaps = ops.max(overlaps, axis=1)  # (B, N); -1 without a box
    argmax = ops.cast(ops.argmax(overlaps, axis=1), "int32")
    matched = ops.full_like(argmax, IGNORED)
    negative = ops.logical_and(max_overlaps >= 0.0, max_overlaps < neg_iou_thr)
    matched = ops.where(negative, NEGATIVE, matched)
    matched = ops.where(max_overlaps >= pos_iou_thr, argmax, matched)
    if match_low_quality:
        gt_max = ops.max(overlaps, axis=2, keepdims=True)  # (B, K, 1)
        qualifies = ops.logical_and(gt_valid[:, :, None], gt_max >= min_pos_iou)
        best = ops.logical_and(ops.logical_and(qualifies, overlaps == gt_max), taking_part)
        index = ops.arange(ops.shape(overlaps)[1], dtype="int32")[None, :, None]
        last = ops.max(ops.where(best, index, -1), axis=1)  # the last box that claims the anchor
        matched = ops.where(last >= 0, last, matched)
    has_boxes = ops.any(gt_valid, axis=1, keepdims=True)
    matched = ops.where(has_boxes, matched, NEGATIVE)
    return ops.where(anchor_valid, matched, IGNORED)
