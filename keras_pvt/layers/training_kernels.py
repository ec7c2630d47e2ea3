"""Exact GELU and LayerNorm for TensorFlow training steps: forward and backward as one XLA loop each.

In a plain TensorFlow graph the exact GELU, the LayerNorm and their autodiff gradients take five to
ten elementwise passes each over the large stage-1 and stage-2 maps: about half of a B0 training step
on CPU. Here each forward pass and a hand-written backward pass compile to one XLA loop. Same
functions and gradients to float32 round-off. They apply only while tracing a TensorFlow graph in
training mode (`model.fit`, `train_on_batch`, a custom `tf.function` step); eager calls, inference,
export and other backends get the plain Keras ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from keras_pvt.layers.activations import exact_gelu, normal_cdf

_INV_SQRT_2PI = 0.3989422804014327
_KERNELS: dict[str, Callable] = {}


def applies(training: bool | None) -> bool:
    """True while tracing a TensorFlow graph in training mode."""
    if not training or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.executing_eagerly()


def gelu(x: Any, training: bool | None = None) -> Any:
    """`exact_gelu(x)`, with XLA-compiled forward and backward passes when tracing a TF training step."""
    return _kernel("gelu")(x) if applies(training) else exact_gelu(x)


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
        import tensorflow as tf

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
