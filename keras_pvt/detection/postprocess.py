"""mmdet's RetinaNet test-time post-processing in `keras.ops`, padded to a fixed number of detections.

As mmdet's `_predict_by_feat_single` and `_bbox_post_process` with RetinaNet's test config: per level
the `pre_nms_top_k` best (anchor, class) pairs by sigmoid score, those above `score_threshold`
kept; their boxes decoded (`box_coder.decode`, clipped to the image); boxes without positive width
and height dropped (``min_bbox_size=0``); class-wise NMS at `iou_threshold` by mmcv's offset trick
(each box shifted by ``label * (largest coordinate + 1)``, which changes float32 rounding exactly
as mmdet's does); the best `max_detections` kept. The NMS itself is backend-specific
(`nms_indices`): TensorFlow's NonMaxSuppressionV4 op (`tf_nms`), a `keras.ops` greedy loop elsewhere.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.detection.anchors import level_anchors_graph
from keras_pvt.detection.box_coder import decode

SCORE_THRESHOLD = 0.05
IOU_THRESHOLD = 0.5
PRE_NMS_TOP_K = 1000
MAX_DETECTIONS = 100
PAD_VALUE = -1


def _minimum(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.minimum(a, b)


def _gather_rows(values: Any, indices: Any) -> Any:
    """``values[b, indices[b, k]]`` for (B, N, D) values and (B, K) int indices: (B, K, D)."""
    batch, rows, depth = ops.shape(values)[0], ops.shape(values)[1], ops.shape(values)[2]
    offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * ops.cast(rows, "int32"), 1)
    flat = ops.reshape(ops.cast(indices, "int32") + offsets, (-1,))
    gathered = ops.take(ops.reshape(values, (-1, depth)), flat, axis=0)
    return ops.reshape(gathered, (batch, -1, depth))


def candidates(
    cls_logits: Any,
    box_deltas: Any,
    image_height: Any,
    image_width: Any,
    score_threshold: float = SCORE_THRESHOLD,
    pre_nms_top_k: int = PRE_NMS_TOP_K,
) -> dict[str, Any]:
    """Each level's best (anchor, class) pairs, decoded: boxes (B, K, 4), scores, labels, valid (B, K)."""
    cls_logits = ops.cast(cls_logits, "float32")
    box_deltas = ops.cast(box_deltas, "float32")
    num_classes = int(cls_logits.shape[-1])
    batch = ops.shape(cls_logits)[0]
    picked: dict[str, list[Any]] = {"boxes": [], "scores": [], "labels": []}
    start = 0
    for anchors in level_anchors_graph(image_height, image_width):
        count = ops.shape(anchors)[0]
        logits = ops.slice(cls_logits, [0, start, 0], [batch, count, num_classes])
        deltas = ops.slice(box_deltas, [0, start, 0], [batch, count, 4])
        start = start + count
        flat = ops.reshape(ops.sigmoid(logits), (batch, -1))
        scores, index = ops.top_k(flat, _minimum(pre_nms_top_k, count * num_classes))
        anchor_index = index // num_classes
        picked_anchors = ops.take(anchors, anchor_index, axis=0)
        boxes = decode(picked_anchors, _gather_rows(deltas, anchor_index), (image_height, image_width))
        picked["boxes"].append(boxes)
        picked["scores"].append(scores)
        picked["labels"].append(ops.cast(index % num_classes, "int32"))
    out = {key: ops.concatenate(value, axis=1) for key, value in picked.items()}
    boxes = out["boxes"]
    out["valid"] = ops.logical_and(
        out["scores"] > score_threshold,
        ops.logical_and(boxes[..., 2] - boxes[..., 0] > 0, boxes[..., 3] - boxes[..., 1] > 0),
    )
    return out


def _pad_candidates(found: dict[str, Any], count: int) -> dict[str, Any]:
    """`count` more invalid candidates, so that there are always at least `count` of them."""
    batch = ops.shape(found["scores"])[0]
    return {
        "boxes": ops.concatenate([found["boxes"], ops.zeros((batch, count, 4), "float32")], axis=1),
        "scores": ops.concatenate([found["scores"], ops.zeros((batch, count), "float32")], axis=1),
        "labels": ops.concatenate([found["labels"], ops.zeros((batch, count), "int32")], axis=1),
        "valid": ops.concatenate([found["valid"], ops.zeros((batch, count), "bool")], axis=1),
    }


def classwise_offsets(boxes: Any, labels: Any, valid: Any) -> Any:
    """mmcv's `batched_nms` boxes: each shifted by ``label * (max coordinate of the valid boxes + 1)``."""
    largest = ops.max(ops.where(ops.expand_dims(valid, -1), boxes, 0.0), axis=(1, 2))
    offsets = ops.cast(labels, "float32") * ops.expand_dims(largest + 1.0, 1)
    return boxes + ops.expand_dims(offsets, -1)


def nms_indices(boxes: Any, scores: Any, max_output_size: int, iou_threshold: float) -> tuple[Any, Any]:
    """Greedy NMS per image over (B, K, 4) xyxy boxes with (B, K) scores (0 = not a candidate).

    Returns the kept indices in descending score order, padded with 0, (B, max_output_size) int32,
    and how many are real (B,) int32. TensorFlow uses its NonMaxSuppressionV4 op (TFLite builtin);
    the other backends a `keras.ops` loop over the score-sorted candidates.
    """
    if keras.backend.backend() == "tensorflow":
        from keras_pvt.detection.tf_nms import nms_indices as tf_nms_indices

        return tf_nms_indices(boxes, scores, max_output_size, iou_threshold)
    return _greedy_nms(boxes, scores, max_output_size, iou_threshold)


def pairwise_iou(boxes: Any) -> Any:
    """IoU of every pair of (B, K, 4) xyxy boxes, (B, K, K), computed as mmcv's `nms` (no +1)."""
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    x1 = ops.maximum(ops.expand_dims(boxes[..., 0], 2), ops.expand_dims(boxes[..., 0], 1))
    y1 = ops.maximum(ops.expand_dims(boxes[..., 1], 2), ops.expand_dims(boxes[..., 1], 1))
    x2 = ops.minimum(ops.expand_dims(boxes[..., 2], 2), ops.expand_dims(boxes[..., 2], 1))
    y2 = ops.minimum(ops.expand_dims(boxes[..., 3], 2), ops.expand_dims(boxes[..., 3], 1))
    inter = ops.maximum(x2 - x1, 0.0) * ops.maximum(y2 - y1, 0.0)
    union = ops.expand_dims(area, 2) + ops.expand_dims(area, 1) - inter
    return inter / ops.maximum(union, 1e-30)


def _greedy_nms(boxes: Any, scores: Any, max_output_size: int, iou_threshold: float) -> tuple[Any, Any]:
    count = int(boxes.shape[1]) if boxes.shape[1] is not None else ops.shape(boxes)[1]
    order = ops.argsort(-scores, axis=-1)
    sorted_boxes = _gather_rows(boxes, order)
    sorted_scores = ops.take_along_axis(scores, order, axis=-1)
    overlaps = pairwise_iou(sorted_boxes) > iou_threshold
    candidate = sorted_scores > 0.0
    positions = ops.arange(count, dtype="int32")

    def step(i: Any, keep: Any) -> Any:
        column = ops.take(overlaps, i, axis=2)  # (B, K): does box j overlap box i
        suppressed = ops.any(ops.logical_and(keep, column), axis=1)
        kept = ops.logical_and(ops.take(candidate, i, axis=1), ops.logical_not(suppressed))
        return ops.where(ops.expand_dims(positions == i, 0), ops.expand_dims(kept, 1), keep)

    keep = ops.fori_loop(0, count, step, ops.zeros_like(candidate))
    rank = ops.where(keep, sorted_scores, -1.0)
    _, best = ops.top_k(rank, max_output_size)
    number = ops.minimum(ops.sum(ops.cast(keep, "int32"), axis=1), max_output_size)
    indices = ops.take_along_axis(order, best, axis=-1)
    padding = ops.expand_dims(ops.arange(max_output_size, dtype="int32"), 0) < ops.expand_dims(number, 1)
    return ops.where(padding, ops.cast(indices, "int32"), 0), ops.cast(number, "int32")


def detect(
    cls_logits: Any,
    box_deltas: Any,
    image_height: Any,
    image_width: Any,
    *,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    pre_nms_top_k: int = PRE_NMS_TOP_K,
    max_detections: int = MAX_DETECTIONS,
) -> dict[str, Any]:
    """Raw head outputs -> ``{"boxes" (B, M, 4) xyxy, "confidence" (B, M), "labels" (B, M) int32,
    "num_detections" (B,) int32}`` with M = `max_detections`, best first, padded with -1."""
    found = _pad_candidates(
        candidates(cls_logits, box_deltas, image_height, image_width, score_threshold, pre_nms_top_k),
        max_detections,
    )
    shifted = classwise_offsets(found["boxes"], found["labels"], found["valid"])
    nms_scores = ops.where(found["valid"], found["scores"], 0.0)
    indices, number = nms_indices(shifted, nms_scores, max_detections, iou_threshold)
    real = ops.expand_dims(ops.arange(max_detections, dtype="int32"), 0) < ops.expand_dims(number, 1)
    boxes = _gather_rows(found["boxes"], indices)
    scores = _gather_rows(ops.expand_dims(found["scores"], -1), indices)[..., 0]
    labels = _gather_rows(ops.expand_dims(found["labels"], -1), indices)[..., 0]
    return {
        "boxes": ops.where(ops.expand_dims(real, -1), boxes, float(PAD_VALUE)),
        "confidence": ops.where(real, scores, float(PAD_VALUE)),
        "labels": ops.where(real, labels, PAD_VALUE),
        "num_detections": number,
    }
