"""The TensorFlow training rewrite: exact GELU and LayerNorm whose forward and backward passes are one
XLA loop each while a training step is traced.

In a plain TensorFlow graph the exact GELU, the LayerNorm and their autodiff gradients take several
elementwise passes each over the large stage-1 and stage-2 maps: a large share of a training step
on CPU (measurements: `benchmarks/results/`). Here each forward pass and a hand-written backward
pass compile to one XLA loop, with the same functions and gradients to float32 round-off. The
replacement layers use them only while a TensorFlow graph is traced in training mode (`model.fit`,
`train_on_batch`, a custom `tf.function` step); eager calls and inference compute as the plain
layers. `PVT_V2` applies the rewrite to every model it builds on TensorFlow; a model loaded from a
file gets it from `rewrite_for_training(model)`. TensorFlow only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_pvt.layers.activations import exact_gelu, normal_cdf
from keras_pvt.layers.mlp import ConvMlp
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.rewrites.swap import Rewrite

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


class TrainingLayerNorm(LayerNorm):
    """`LayerNorm`, as one XLA loop forward and one backward while a training step is traced."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (applies(training) and self.scale and self.center):
            return super().call(inputs, training=training)
        x = ops.cast(inputs, "float32")
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        return ops.cast(layer_norm(x, gamma, beta, self.epsilon), self.compute_dtype)


class TrainingConvMlp(ConvMlp):
    """`ConvMlp`, its exact GELU one XLA loop forward and one backward while a training step is traced."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not applies(training):
            return super().call(inputs, training=training)
        x = self.fc1(inputs)
        if self.linear:
            x = ops.relu(x)
        x = self.drop(gelu(self.dwconv(x)), training=training)
        return self.drop(self.fc2(x), training=training)


TRAINING = Rewrite("tf_training", {LayerNorm: TrainingLayerNorm, ConvMlp: TrainingConvMlp})


def rewrite_for_training(model: keras.Model) -> keras.Model:
    """`model` itself, its nested `LayerNorm` and `ConvMlp` layers given the training classes above.

    Done in place, so that `model.fit` trains `model`'s own variables; only layers nested inside
    other layers are swapped (those a saved model does not name), so `.keras` files and weights
    files of `model` are unchanged. Returns `model`.
    """
    top_level = {id(layer) for layer in model.layers}
    for layer in TRAINING.targets(model):
        if id(layer) not in top_level:
            layer.__class__ = TRAINING.replacement(layer)
    return model
