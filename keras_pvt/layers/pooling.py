"""Adaptive average pooling with PyTorch's window rule, for static or run-time spatial sizes."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_pvt.limits import MAX_IMAGE_SIZE, as_int


def _inside_windows(xp: Any, size: Any, output_size: int) -> Any:
    """Boolean ``(output_size, size)``: whether column j lies in PyTorch's window i.

    `xp` is `numpy` (a static `size`) or `keras.ops` (a run-time one): the same formula for both.
    """
    rows = xp.arange(output_size, dtype="int32")[:, None]
    cols = xp.arange(size, dtype="int32")[None, :]
    start = xp.floor_divide(rows * size, output_size)
    end = xp.floor_divide((rows + 1) * size + output_size - 1, output_size)
    return xp.logical_and(xp.greater_equal(cols, start), xp.less(cols, end))


def adaptive_pool_matrix(size: Any, output_size: int, dtype: Any = "float32") -> Any:
    """`(output_size, size)` matrix whose row i averages PyTorch's window i of a length-`size` axis.

    Window i spans ``floor(i * size / out)`` to ``ceil((i + 1) * size / out)`` (exclusive), so windows
    overlap or vary in length when `size` is not a multiple of `output_size`, exactly as
    `torch.nn.AdaptiveAvgPool2d`. A Python int `size` (every static shape, and every shape on JAX
    and PyTorch) gives a constant built with NumPy, so traced code (JAX's jit) never needs a
    concrete value of a tensor; a scalar tensor known only at run time (TensorFlow graphs with None
    dims) gives the same matrix computed in the graph.
    """
    if isinstance(size, (int, np.integer)):
        inside = _inside_windows(np, int(size), output_size).astype("float32")
        matrix = inside / inside.sum(axis=1, keepdims=True)
        return ops.cast(ops.convert_to_tensor(matrix), dtype)
    size = ops.cast(size, "int32")
    weights = ops.cast(_inside_windows(ops, size, output_size), dtype)
    return weights / ops.sum(weights, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="keras_pvt")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """NHWC adaptive average pooling to a fixed `output_size`, matching `nn.AdaptiveAvgPool2d`.

    Works for any input size (smaller than, equal to or not divisible by the output size) and for
    spatial dims unknown until run time: the averaging is two small matmuls with matrices built from
    the run-time height and width, which XLA and TFLite's builtin ops both run. Keras' own
    `AdaptiveAveragePooling2D` has the same windows but needs the size when traced on TensorFlow,
    so it cannot serve the dynamic-size exports.
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
