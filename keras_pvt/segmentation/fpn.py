"""The PVT-v2 paper's Semantic FPN head as Keras layers: mmseg's `FPN` neck and `FPNHead`.

Layer names follow mmseg's module names (see `checkpoint_keys`): the neck's ``lateral_convs.{i}``
are "neck_lateral{i}", its ``fpn_convs.{i}`` "neck_fpn{i}"; the head's ``scale_heads.{i}`` convs
and norms are "head_scale{i}_conv{k}" / "head_scale{i}_bn{k}", its classifier "conv_seg".
"""

from __future__ import annotations

import math
from typing import Any

import keras

from keras_pvt.layers import ResizeBilinearLike, ResizeNearestLike, SyncBatchNormalization, UpsampleBilinear

FEATURE_STRIDES = (4, 8, 16, 32)
# Initialisers of mmseg's modules: the neck's convs Xavier-uniform (FPN's init_cfg), the head's
# ConvModules Kaiming-normal (fan_out, ReLU gain), the classifier normal(std 0.01); biases 0.
_XAVIER = keras.initializers.GlorotUniform
_KAIMING = {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"}
CONV_SEG_STD = 0.01


def fpn_neck(features: list[Any], channels: int, extra_levels: int = 0) -> list[Any]:
    """mmseg's / mmdet's ``FPN(in_channels, out_channels=channels)`` without norms.

    Lateral 1x1 convs, then from the coarsest level down each lateral plus the level above resized
    to its exact size (PyTorch ``nearest``), then a 3x3 conv per level. `extra_levels` adds mmdet's
    ``add_extra_convs='on_input'`` levels (RetinaNet's P6, P7): 3x3 stride-2 convs with padding 1,
    the first on the last input feature, each next one on the previous extra level (no ReLU between:
    ``relu_before_extra_convs=False``). They are named "neck_fpn{i}" after the regular ones, as
    mmdet's ``fpn_convs.{i}``.
    """
    laterals = [
        keras.layers.Conv2D(channels, 1, kernel_initializer=_XAVIER(), name=f"neck_lateral{i}")(feature)
        for i, feature in enumerate(features)
    ]
    for i in range(len(laterals) - 1, 0, -1):
        upsampled = ResizeNearestLike(name=f"neck_top_down{i}")([laterals[i], laterals[i - 1]])
        laterals[i - 1] = keras.layers.Add(name=f"neck_merge{i - 1}")([laterals[i - 1], upsampled])
    outputs = [
        keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=_XAVIER(), name=f"neck_fpn{i}")(
            lateral
        )
        for i, lateral in enumerate(laterals)
    ]
    source = features[-1]
    for i in range(len(features), len(features) + extra_levels):
        # PyTorch's padding=1 on every side; Keras' "same" would pad only after for stride 2.
        padded = keras.layers.ZeroPadding2D(1, name=f"neck_pad{i}")(source)
        source = keras.layers.Conv2D(
            channels, 3, strides=2, padding="valid", kernel_initializer=_XAVIER(), name=f"neck_fpn{i}"
        )(padded)
        outputs.append(source)
    return outputs


def scale_head_length(level: int, strides: tuple[int, ...] = FEATURE_STRIDES) -> int:
    """Conv blocks of ``scale_heads[level]``: one per factor 2 down to the finest stride (at least 1)."""
    return max(1, int(math.log2(strides[level]) - math.log2(strides[0])))


def fpn_head(
    levels: list[Any], channels: int, num_classes: int, dropout: float, strides: tuple[int, ...]
) -> Any:
    """mmseg's `FPNHead` up to ``conv_seg``: the stride-`strides[0]` logits (before the final resize).

    Per level: (3x3 conv without bias, BatchNorm, ReLU, 2x bilinear upsampling) blocks down to the
    finest stride; the levels summed after a bilinear resize to the first one's size; channel
    dropout (``Dropout2d``); the 1x1 classifier.
    """
    output = None
    for level, x in enumerate(levels):
        for k in range(scale_head_length(level, strides)):
            x = keras.layers.Conv2D(
                channels,
                3,
                padding="same",
                use_bias=False,
                kernel_initializer=keras.initializers.VarianceScaling(**_KAIMING),
                name=f"head_scale{level}_conv{k}",
            )(x)
            x = SyncBatchNormalization(name=f"head_scale{level}_bn{k}")(x)
            x = keras.layers.ReLU(name=f"head_scale{level}_relu{k}")(x)
            if strides[level] != strides[0]:
                x = UpsampleBilinear(2, name=f"head_scale{level}_up{k}")(x)
        if output is None:
            output = x
        else:
            x = ResizeBilinearLike(name=f"head_resize{level}")([x, output])
            output = keras.layers.Add(name=f"head_sum{level}")([output, x])
    if dropout:
        output = keras.layers.SpatialDropout2D(dropout, name="head_dropout")(output)
    return keras.layers.Conv2D(
        num_classes,
        1,
        kernel_initializer=keras.initializers.RandomNormal(stddev=CONV_SEG_STD),
        name="conv_seg",
    )(output)
