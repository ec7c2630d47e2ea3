"""mmdet's `DeltaXYWHBBoxCoder` (means 0, stds 1) in `keras.ops`: xyxy boxes <-> (dx, dy, dw, dh).

The arithmetic follows mmdet's `bbox2delta` / `delta2bbox` operation by operation in float32, so
decoded boxes match it to round-off; both run eagerly on NumPy inputs and inside traced graphs.
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

# mmdet's default `wh_ratio_clip`: dw and dh are clamped to +-|log(16 / 1000)| before `exp`.
WH_RATIO_CLIP = 16 / 1000
MAX_LOG_RATIO = abs(math.log(WH_RATIO_CLIP))


def _centres_and_sizes(boxes: Any) -> tuple[Any, Any, Any, Any]:
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return (x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1


def encode(anchors: Any, boxes: Any) -> Any:
    """Regression targets of `boxes` relative to `anchors` (both (..., 4) xyxy): (..., 4) float32.

    ``dx = (gx - px) / pw``, ``dy = (gy - py) / ph``, ``dw = log(gw / pw)``, ``dh = log(gh / ph)``.
    """
    anchors = ops.cast(ops.convert_to_tensor(anchors), "float32")
    boxes = ops.cast(ops.convert_to_tensor(boxes), "float32")
    px, py, pw, ph = _centres_and_sizes(anchors)
    gx, gy, gw, gh = _centres_and_sizes(boxes)
    return ops.stack([(gx - px) / pw, (gy - py) / ph, ops.log(gw / pw), ops.log(gh / ph)], axis=-1)


def decode(anchors: Any, deltas: Any, max_shape: Any = None) -> Any:
    """Boxes (..., 4) xyxy from `anchors` (..., 4) and `deltas` (..., 4), as mmdet's `delta2bbox`.

    dw and dh are clamped to +-log(1000 / 16); with `max_shape` = (height, width) (ints or scalar
    tensors) x is clipped to [0, width] and y to [0, height].
    """
    anchors = ops.cast(ops.convert_to_tensor(anchors), "float32")
    deltas = ops.cast(ops.convert_to_tensor(deltas), "float32")
    pxy = (anchors[..., :2] + anchors[..., 2:]) * 0.5
    pwh = anchors[..., 2:] - anchors[..., :2]
    dxy_wh = pwh * deltas[..., :2]
    dwh = ops.clip(deltas[..., 2:], -MAX_LOG_RATIO, MAX_LOG_RATIO)
    gxy = pxy + dxy_wh
    gwh = pwh * ops.exp(dwh)
    x1y1 = gxy - gwh * 0.5
    x2y2 = gxy + gwh * 0.5
    if max_shape is None:
        return ops.concatenate([x1y1, x2y2], axis=-1)
    height = ops.cast(max_shape[0], "float32")
    width = ops.cast(max_shape[1], "float32")
    x1 = ops.clip(x1y1[..., 0], 0.0, width)
    y1 = ops.clip(x1y1[..., 1], 0.0, height)
    x2 = ops.clip(x2y2[..., 0], 0.0, width)
    y2 = ops.clip(x2y2[..., 1], 0.0, height)
    return ops.stack([x1, y1, x2, y2], axis=-1)
