"""A 3x3 depthwise convolution written as nine shifted multiply-adds, for code that XLA compiles.

XLA fuses the shifts into one loop over memory, while its own depthwise convolution is many times
slower than TensorFlow's kernel on CPU (measurements: `benchmarks/results/`); the XLA tables of
TensorFlow (`tf_xla`) and JAX (`jax_xla`) use it. Each shift zero-pads
only its own slice, so no padded copy of the input is ever materialised.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_pvt.kernels.activations import exact_gelu


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


def shifted_depthwise_conv_gelu(dwconv: Any, x: Any) -> Any:
    """The `depthwise_conv_gelu` kernel, ``exact_gelu(dwconv(x))``, with the conv as shifted multiply-adds."""
    return exact_gelu(shifted_depthwise_conv(x, dwconv.kernel, dwconv.bias))
