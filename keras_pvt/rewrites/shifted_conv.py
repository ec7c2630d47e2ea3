"""A 3x3 depthwise convolution written as nine shifted multiply-adds, for models that XLA compiles.

XLA fuses the shifts, the bias and what follows (the MLP's GELU) into one loop over memory, while
its own depthwise convolution is many times slower than TensorFlow's kernel on CPU (measurements:
`benchmarks/results/NOTES.md`). Each shift zero-pads only its own slice, so no padded copy of the
input is ever materialised.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def shifted(x: Any, dy: int, dx: int) -> Any:
    """`x` (NHWC) moved so that ``out[y, x] = x[y + dy, x + dx]``, zero outside the image."""
    height, width = ops.shape(x)[1], ops.shape(x)[2]
    window = x[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0), :]
    return ops.pad(window, [[0, 0], [max(-dy, 0), max(dy, 0)], [max(-dx, 0), max(dx, 0)], [0, 0]])


def shifted_depthwise_conv(x: Any, kernel: Any, bias: Any) -> Any:
    """3x3 depthwise conv (kernel ``(3, 3, C, 1)``), stride 1, zero padding 1, plus bias."""
    kernel = ops.cast(kernel, x.dtype)
    out = x * kernel[1, 1, :, 0] + ops.cast(bias, x.dtype)
    for i in range(3):
        for j in range(3):
            if (i, j) != (1, 1):
                out = out + shifted(x, i - 1, j - 1) * kernel[i, j, :, 0]
    return out


def is_shiftable(layer: Any) -> bool:
    """A 3x3, stride-1, "same"-padded depthwise conv with bias, one output per channel, no activation."""
    return (
        tuple(layer.kernel_size) == (3, 3)
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.padding == "same"
        and layer.depth_multiplier == 1
        and layer.use_bias
        and layer.data_format == "channels_last"
        and layer.activation is keras.activations.linear
    )


class ShiftedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` (3x3, stride 1, "same", bias) computed as shifted multiply-adds."""

    def call(self, inputs: Any) -> Any:
        return shifted_depthwise_conv(inputs, self.kernel, self.bias)
