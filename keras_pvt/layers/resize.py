"""Resizing of NHWC maps with PyTorch's `F.interpolate` rules, at sizes known only at run time.

`ResizeNearestLike` and `ResizeBilinearLike` resize a map to the spatial size of a second tensor
(mmseg's ``resize(x, size=other.shape[2:])``); `UpsampleBilinear` multiplies the size by an integer
(mmseg's ``Upsample(scale_factor=2)``). Bilinear resizing uses ``align_corners=False`` (half-pixel
centres), which is what `keras.ops.image.resize` computes on every backend (TFLite: one
RESIZE_BILINEAR). PyTorch's ``nearest`` takes source index ``floor(i * in / out)``, unlike
TensorFlow's half-pixel nearest; it is computed here as PyTorch does (float32 scale) and applied
with two gathers (TFLite: RANGE, MUL, FLOOR, CAST, MINIMUM, GATHER).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt._keras_private import resize_bilinear


def _nearest_indices(in_size: Any, out_size: Any) -> Any:
    """PyTorch's nearest source indices: ``min(floor(i * float32(in / out)), in - 1)``."""
    scale = ops.cast(in_size, "float32") / ops.cast(out_size, "float32")
    positions = ops.cast(ops.arange(out_size), "float32") * scale
    return ops.minimum(ops.cast(ops.floor(positions), "int32"), ops.cast(in_size, "int32") - 1)


def _like_shape(input_shape: Any) -> tuple:
    """(batch, reference height, reference width, channels) of ``[x, reference]`` shapes."""
    x_shape, reference_shape = input_shape
    return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[-1])


@keras.saving.register_keras_serializable(package="keras_pvt")
class ResizeNearestLike(keras.layers.Layer):
    """``[x, reference]`` -> x resized to reference's height and width, PyTorch ``nearest`` rule."""

    def call(self, inputs: Any) -> Any:
        x, reference = inputs
        in_height, in_width = ops.shape(x)[1], ops.shape(x)[2]
        out_height, out_width = ops.shape(reference)[1], ops.shape(reference)[2]
        x = ops.take(x, _nearest_indices(in_height, out_height), axis=1)
        return ops.take(x, _nearest_indices(in_width, out_width), axis=2)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return _like_shape(input_shape)


@keras.saving.register_keras_serializable(package="keras_pvt")
class ResizeBilinearLike(keras.layers.Layer):
    """``[x, reference]`` -> x resized bilinearly (align_corners=False) to reference's height, width."""

    def call(self, inputs: Any) -> Any:
        x, reference = inputs
        return resize_bilinear(x, (ops.shape(reference)[1], ops.shape(reference)[2]))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return _like_shape(input_shape)


@keras.saving.register_keras_serializable(package="keras_pvt")
class UpsampleBilinear(keras.layers.Layer):
    """x -> x resized bilinearly (align_corners=False) to `scale` times its height and width."""

    def __init__(self, scale: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if type(scale) is not int or scale < 1:
            raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
        self.scale = scale

    def call(self, inputs: Any) -> Any:
        size = (ops.shape(inputs)[1] * self.scale, ops.shape(inputs)[2] * self.scale)
        return resize_bilinear(inputs, size)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        height, width = (None if d is None else d * self.scale for d in input_shape[1:3])
        return (input_shape[0], height, width, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}
