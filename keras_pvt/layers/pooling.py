"""Adaptive average pooling with PyTorch's window rule, for static or run-time spatial sizes."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.limits import MAX_IMAGE_SIZE, as_int


def adaptive_pool_matrix(size: Any, output_size: int, dtype: str = "float32") -> Any:
    """`(output_size, size)` matrix whose row i averages PyTorch's window i of a length-`size` axis.

    Window i spans ``floor(i * size / out)`` to ``ceil((i + 1) * size / out)`` (exclusive), so windows
    overlap or vary in length when `size` is not a multiple of `output_size`, exactly as
    `torch.nn.AdaptiveAvgPool2d`. `size` may be a Python int or a scalar tensor known only at run time.
    """
    size = ops.cast(size, "int32")
    rows = ops.arange(output_size, dtype="int32")[:, None]
    cols = ops.arange(size, dtype="int32")[None, :]
    start = ops.floor_divide(rows * size, output_size)
    end = ops.floor_divide((rows + 1) * size + output_size - 1, output_size)
    inside = ops.logical_and(ops.greater_equal(cols, start), ops.less(cols, end))
    weights = ops.cast(inside, dtype)
    return weights / ops.sum(weights, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="keras_pvt")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """NHWC adaptive average pooling to a fixed `output_size`, matching `nn.AdaptiveAvgPool2d`.

    Works for any input size (smaller than, equal to or not divisible by the output size) and for
    spatial dims unknown until run time: the averaging is two small matmuls with matrices built from
    the run-time height and width, which XLA and TFLite's builtin ops both run.
    """

    def __init__(self, output_size: int | tuple[int, int] = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(as_int("output_size", s, MAX_IMAGE_SIZE) for s in output_size)

    def call(self, inputs: Any) -> Any:
        out_h, out_w = self.output_size
        _, height, width, channels = ops.shape(inputs)
        pool_h = adaptive_pool_matrix(height, out_h, inputs.dtype)
        pool_w = adaptive_pool_matrix(width, out_w, inputs.dtype)
        # rows: (B, H, W*C) -> (B, out_h, W*C)
        x = ops.reshape(inputs, (-1, height, width * channels))
        x = ops.matmul(pool_h, x)
        # columns: (B*out_h, W, C) -> (B*out_h, out_w, C)
        x = ops.reshape(x, (-1, width, channels))
        x = ops.matmul(pool_w, x)
        return ops.reshape(x, (-1, out_h, out_w, channels))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": list(self.output_size)}
