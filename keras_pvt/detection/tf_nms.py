"""Per-image greedy NMS with TensorFlow's NonMaxSuppressionV4 op (TFLite: NON_MAX_SUPPRESSION_V4).

TensorFlow only: `postprocess.nms_indices` imports this module on the TensorFlow backend. The op
suppresses a box whose IoU with a kept, higher-scored one exceeds the threshold (as mmcv's `nms`)
and keeps only boxes scoring above 0 (the post-processing gives non-candidates a score of 0).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def nms_indices(boxes: Any, scores: Any, max_output_size: int, iou_threshold: float) -> tuple[Any, Any]:
    """(B, max_output_size) kept indices best first (padded with 0) and (B,) counts, int32."""
    size = tf.constant(max_output_size, tf.int32)
    iou = tf.constant(iou_threshold, tf.float32)
    floor = tf.constant(0.0, tf.float32)

    def one_image(args: tuple[Any, Any]) -> tuple[Any, Any]:
        image_boxes, image_scores = args
        # The op reads each box as (y1, x1, y2, x2); IoU is the same for (x1, y1, x2, y2).
        indices, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=image_boxes,
            scores=image_scores,
            max_output_size=size,
            iou_threshold=iou,
            score_threshold=floor,
            pad_to_max_output_size=True,
        )
        return tf.reshape(indices, [max_output_size]), count

    return tf.map_fn(
        one_image,
        (tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32)),
        fn_output_signature=(
            tf.TensorSpec([max_output_size], tf.int32),
            tf.TensorSpec([], tf.int32),
        ),
    )
