"""The training table: exact GELU and LayerNorm whose forward and backward passes are one XLA loop each.

In a plain TensorFlow graph the exact GELU, the LayerNorm and their autodiff gradients take several
elementwise passes each over the large stage-1 and stage-2 maps: a large share of a training step
on CPU (measurements: `benchmarks/results/`). Here each forward pass and a hand-written backward
pass compile to one XLA loop. Same functions and gradients to float32 round-off. The table applies
only while a TensorFlow graph is traced in training mode (`model.fit`, `train_on_batch`, a custom
`tf.function` step); eager calls, inference, export and other backends get the plain kernels.
TensorFlow only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from keras import ops

from keras_pvt.kernels import plain
from keras_pvt.kernels.activations import exact_gelu, normal_cdf
from keras_pvt.kernels.tf_plain import TF_PLAIN

_INV_SQRT_2PI = 0.3989422804014327
_KERNELS: dict[str, Callable] = {}


def applies(training: bool | None) -> bool:
    """True while tracing a TensorFlow graph in training mode."""
    return bool(training) and not tf.executing_eagerly()


def gelu(x: Any) -> Any:
    """`exact_gelu(x)` with XLA-compiled forward and backward passes."""
    return _kernel("gelu")(x)


def layer_norm(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    """LayerNorm over the last axis of float32 `x` (one XLA loop forward, one backward)."""
    return _kernel("layer_norm")(x, gamma, beta, ops.convert_to_tensor(epsilon, x.dtype))


def exact_gelu_gradient(x: Any, dy: Any) -> Any:
    """``dy * d gelu(x) / dx`` for the exact GELU: ``dy * (Phi(x) + x * phi(x))``."""
    pdf = ops.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return dy * (normal_cdf(x) + x * pdf)


def _normalized(x: Any, epsilon: Any) -> tuple[Any, Any]:
    mean, variance = ops.moments(x, axes=[-1], keepdims=True)
    inv = ops.rsqrt(variance + epsilon)
    return (x - mean) * inv, inv


def layer_norm_forward(x: Any, gamma: Any, beta: Any, epsilon: Any) -> Any:
    normalized, _ = _normalized(x, epsilon)
    return normalized * gamma + beta


def layer_norm_gradient(x: Any, gamma: Any, epsilon: Any, dy: Any) -> tuple[Any, Any, Any]:
    """(dx, dgamma, dbeta) of ``y = (x - mean) * inv * gamma + beta`` over the last axis."""
    normalized, inv = _normalized(x, epsilon)
    token_axes = list(range(len(x.shape) - 1))
    dgamma = ops.sum(dy * normalized, axis=token_axes)
    dbeta = ops.sum(dy, axis=token_axes)
    dnorm = dy * gamma
    dx = inv * (
        dnorm
        - ops.mean(dnorm, axis=-1, keepdims=True)
        - normalized * ops.mean(dnorm * normalized, axis=-1, keepdims=True)
    )
    return dx, dgamma, dbeta


def _kernel(name: str) -> Callable:
    if not _KERNELS:

        def xla(fn: Callable) -> Callable:
            return tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)

        gelu_forward, gelu_backward = xla(exact_gelu), xla(exact_gelu_gradient)
        norm_forward, norm_backward = xla(layer_norm_forward), xla(layer_norm_gradient)

        @tf.custom_gradient
        def xla_gelu(x: tf.Tensor) -> tuple[tf.Tensor, Callable]:
            return gelu_forward(x), lambda dy: gelu_backward(x, dy)

        @tf.custom_gradient
        def xla_layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: tf.Tensor):
            def gradient(dy: tf.Tensor) -> tuple:
                return (*norm_backward(x, gamma, epsilon, dy), None)

            return norm_forward(x, gamma, beta, epsilon), gradient

        _KERNELS.update(gelu=xla_gelu, layer_norm=xla_layer_norm)
    return _KERNELS[name]


def depthwise_conv_gelu(dwconv: Any, x: Any) -> Any:
    return gelu(dwconv(x))


def normalize(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    if gamma is None or beta is None:
        return plain.normalize(x, gamma, beta, epsilon)
    return layer_norm(x, gamma, beta, epsilon)


TF_TRAINING = dataclasses.replace(
    TF_PLAIN, name="tf_training", depthwise_conv_gelu=depthwise_conv_gelu, normalize=normalize
)
