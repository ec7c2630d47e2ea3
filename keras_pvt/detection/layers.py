"""`RetinaNetDetections`: the RetinaNet head's raw outputs -> padded detections, as a Keras layer."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.detection.postprocess import (
    IOU_THRESHOLD,
    MAX_DETECTIONS,
    PAD_VALUE,
    PRE_NMS_TOP_K,
    SCORE_THRESHOLD,
    detect,
)

DEFAULT_FORMAT = "xyxy"
# The formats of `keras.utils.bounding_boxes.convert_format`.
BOX_FORMATS = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)


@keras.saving.register_keras_serializable(package="keras_pvt")
class RetinaNetDetections(keras.layers.Layer):
    """``[images, cls_logits, box_deltas]`` -> mmdet's RetinaNet test-time detections, padded.

    Returns ``{"boxes": (B, M, 4), "confidence": (B, M), "labels": (B, M) int32,
    "num_detections": (B,) int32}`` with M = `max_detections`, best first; entries beyond
    ``num_detections`` are -1. Boxes are in input pixels, in `bounding_box_format` (any format of
    `keras.utils.bounding_boxes.convert_format`; "xyxy" by default). The images give only their
    size (anchors and clipping). See `keras_pvt.detection.postprocess` for the steps.
    """

    def __init__(
        self,
        score_threshold: float = SCORE_THRESHOLD,
        iou_threshold: float = IOU_THRESHOLD,
        pre_nms_top_k: int = PRE_NMS_TOP_K,
        max_detections: int = MAX_DETECTIONS,
        bounding_box_format: str = DEFAULT_FORMAT,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.max_detections = int(max_detections)
        self.bounding_box_format = str(bounding_box_format)
        _check(self)

    def call(self, inputs: Any) -> dict[str, Any]:
        images, cls_logits, box_deltas = inputs
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        out = detect(
            cls_logits,
            box_deltas,
            height,
            width,
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            pre_nms_top_k=self.pre_nms_top_k,
            max_detections=self.max_detections,
        )
        if self.bounding_box_format.lower() != DEFAULT_FORMAT:
            boxes = keras.utils.bounding_boxes.convert_format(
                out["boxes"],
                source=DEFAULT_FORMAT,
                target=self.bounding_box_format,
                height=ops.cast(height, "float32"),
                width=ops.cast(width, "float32"),
            )
            real = ops.expand_dims(out["confidence"] != PAD_VALUE, -1)
            out["boxes"] = ops.where(real, boxes, float(PAD_VALUE))
        return out

    def compute_output_spec(self, inputs: Any) -> dict[str, Any]:
        batch = inputs[1].shape[0]
        size = self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, size, 4), dtype="float32"),
            "confidence": keras.KerasTensor((batch, size), dtype="float32"),
            "labels": keras.KerasTensor((batch, size), dtype="int32"),
            "num_detections": keras.KerasTensor((batch,), dtype="int32"),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "pre_nms_top_k": self.pre_nms_top_k,
            "max_detections": self.max_detections,
            "bounding_box_format": self.bounding_box_format,
        }


def _check(layer: RetinaNetDetections) -> None:
    if layer.bounding_box_format.lower() not in BOX_FORMATS:
        raise ValueError(
            f"`bounding_box_format` must be one of {BOX_FORMATS}, got {layer.bounding_box_format!r}."
        )
    if not 0.0 <= layer.score_threshold < 1.0:
        raise ValueError(f"`score_threshold` must be in [0, 1), got {layer.score_threshold}.")
    if not 0.0 < layer.iou_threshold <= 1.0:
        raise ValueError(f"`iou_threshold` must be in (0, 1], got {layer.iou_threshold}.")
    for name in ("pre_nms_top_k", "max_detections"):
        if getattr(layer, name) < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {getattr(layer, name)}.")
