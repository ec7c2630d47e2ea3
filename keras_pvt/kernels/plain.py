"""The plain kernel table: every kernel as the Keras layers and `keras.ops`, on every backend.

This is the reference maths; the other tables must agree with it to float32 round-off.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from keras import ops

from keras_pvt.kernels.activations import exact_gelu
from keras_pvt.kernels.table import KernelTable


def dense(layer: Any, x: Any) -> Any:
    return layer(x)


def layer_norm(norm: Any, x: Any) -> Any:
    return norm(x)


def add_norm(norm: Any, x: Any, y: Any) -> tuple[Any, Any]:
    total = x + y
    return total, norm(total)


def conv_norm(conv: Any, norm: Any, x: Any) -> Any:
    return norm(conv(x))


def conv_norm_gelu(conv: Any, norm: Any, x: Any) -> Any:
    return exact_gelu(norm(conv(x)))


def depthwise_conv_gelu(dwconv: Any, x: Any) -> Any:
    return exact_gelu(dwconv(x))


def attention(q: Any, keys: Any, values: Any, dropout: Callable[[Any], Any]) -> Any:
    scores = ops.cast(ops.matmul(q, keys), "float32")  # softmax in float32 under mixed precision
    with warnings.catch_warnings():
        # A single key/value token (tiny inputs) is legitimate here, not the mistake Keras warns of.
        warnings.filterwarnings("ignore", message="You are using a softmax over axis")
        weights = ops.softmax(scores, axis=-1)
    return ops.matmul(dropout(ops.cast(weights, q.dtype)), values)


def normalize(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    mean, variance = ops.moments(x, axes=[-1], keepdims=True)
    inv = ops.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    shift = beta - mean * inv if beta is not None else -(mean * inv)
    return x * inv + shift


def assert_min_image_size(images: Any, minimum: int, message: str) -> Any:
    """`images` unchanged: without graphs of run-time sizes (JAX, PyTorch) there is nothing to assert."""
    return images


PLAIN = KernelTable(
    name="plain",
    dense=dense,
    layer_norm=layer_norm,
    add_norm=add_norm,
    conv_norm=conv_norm,
    conv_norm_gelu=conv_norm_gelu,
    depthwise_conv_gelu=depthwise_conv_gelu,
    attention=attention,
    normalize=normalize,
    assert_min_image_size=assert_min_image_size,
)
