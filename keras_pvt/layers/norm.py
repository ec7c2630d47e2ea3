"""LayerNorm written so that full-integer TFLite quantizes every op of it."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pvt")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis, computed as ``x * inv + (beta - mean * inv)``.

    Same weights (gamma, beta), same values to float32 round-off. Keras' own formulation negates the
    mean (``-mean * inv + beta``); TFLite has no int8 NEG kernel, so every norm of a full-int8 model
    then falls back to float between QUANTIZE/DEQUANTIZE pairs. This form (with the default
    ``center=True``) needs only MUL, SUB and ADD.
    Computed in float32 under mixed precision.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        axis = kwargs.pop("axis", -1)
        if axis not in (-1, [-1]):
            raise ValueError(f"keras_pvt LayerNorm normalises the last axis only, got axis={axis!r}.")
        super().__init__(axis=-1, epsilon=epsilon, **kwargs)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = ops.cast(inputs, "float32")
        gamma = ops.cast(self.gamma, "float32") if self.scale else None
        beta = ops.cast(self.beta, "float32") if self.center else None
        mean, variance = ops.moments(x, axes=[-1], keepdims=True)
        inv = ops.rsqrt(variance + self.epsilon)
        if gamma is not None:
            inv = inv * gamma
        shift = beta - mean * inv if beta is not None else -(mean * inv)
        return ops.cast(x * inv + shift, self.compute_dtype)
