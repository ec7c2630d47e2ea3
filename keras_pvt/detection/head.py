"""mmdet's `RetinaHead` as Keras layers, shared over the pyramid levels, with flattened outputs.

Layer names follow mmdet's module names (see `checkpoint_keys`): ``cls_convs.{i}`` /
``reg_convs.{i}`` are "head_cls_conv{i}" / "head_reg_conv{i}", ``retina_cls`` / ``retina_reg``
"head_retina_cls" / "head_retina_reg". The per-level maps are flattened as mmdet does
(``permute(1, 2, 0).reshape(-1, C)``: locations row-major, then the level's base anchors) and
concatenated over the levels, in the order of `keras_pvt.detection.anchors.anchor_boxes`.
"""

from __future__ import annotations

import math
from typing import Any

import keras

# mmdet's RetinaHead init: every conv normal(std 0.01), bias 0; the classifier's bias is
# `bias_init_with_prob(0.01)`, so that every anchor starts at a 1% foreground probability.
HEAD_STD = 0.01
PRIOR_PROBABILITY = 0.01
BOX_CODE_SIZE = 4
CLS_OUTPUT = "cls_logits"
BOX_OUTPUT = "box_deltas"


def prior_bias(probability: float = PRIOR_PROBABILITY) -> float:
    """mmcv's `bias_init_with_prob`: ``-log((1 - p) / p)``."""
    return float(-math.log((1 - probability) / probability))


def retina_head(
    levels: list[Any], num_classes: int, num_anchors: int, channels: int = 256, stacked_convs: int = 4
) -> dict[str, Any]:
    """``{"cls_logits": (B, N, num_classes), "box_deltas": (B, N, 4)}`` float32 over all levels.

    Per branch `stacked_convs` 3x3 convs (stride 1, padding 1) with ReLU, then a 3x3 conv to
    ``num_anchors * num_classes`` class logits or ``num_anchors * 4`` box deltas; the same layers run
    on every level.
    """
    normal = keras.initializers.RandomNormal(stddev=HEAD_STD)
    branches = {}
    for branch in ("cls", "reg"):
        branches[branch] = [
            keras.layers.Conv2D(
                channels,
                3,
                padding="same",
                activation="relu",
                kernel_initializer=normal,
                name=f"head_{branch}_conv{i}",
            )
            for i in range(stacked_convs)
        ]
    retina_cls = keras.layers.Conv2D(
        num_anchors * num_classes,
        3,
        padding="same",
        kernel_initializer=normal,
        bias_initializer=keras.initializers.Constant(prior_bias()),
        name="head_retina_cls",
    )
    retina_reg = keras.layers.Conv2D(
        num_anchors * BOX_CODE_SIZE, 3, padding="same", kernel_initializer=normal, name="head_retina_reg"
    )
    cls_levels, box_levels = [], []
    for level, x in enumerate(levels):
        cls_feature, reg_feature = x, x
        for conv in branches["cls"]:
            cls_feature = conv(cls_feature)
        for conv in branches["reg"]:
            reg_feature = conv(reg_feature)
        cls_levels.append(
            keras.layers.Reshape((-1, num_classes), name=f"head_cls_flat{level}")(retina_cls(cls_feature))
        )
        box_levels.append(
            keras.layers.Reshape((-1, BOX_CODE_SIZE), name=f"head_reg_flat{level}")(retina_reg(reg_feature))
        )
    cls_logits = keras.layers.Concatenate(axis=1, name="head_cls_concat")(cls_levels)
    box_deltas = keras.layers.Concatenate(axis=1, name="head_reg_concat")(box_levels)
    return {
        CLS_OUTPUT: keras.layers.Activation("linear", dtype="float32", name=CLS_OUTPUT)(cls_logits),
        BOX_OUTPUT: keras.layers.Activation("linear", dtype="float32", name=BOX_OUTPUT)(box_deltas),
    }
