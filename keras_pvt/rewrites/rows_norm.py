"""LayerNorm over a 2-D ``(rows, channels)`` view, the form OpenVINO's CPU plugin runs natively.

OpenVINO fuses ``(x - mean) / sqrt(var + eps) * gamma + beta`` into one MVN op; its CPU plugin runs
an MVN over the last axis of a 2-D or 3-D tensor natively, but decomposes one over the last axis
alone of a 4-D NHWC map into reductions and elementwise kernels again (docs/deployment.md,
"OpenVINO IR"). Same values as `LayerNorm` to float32 round-off; keras.ops only.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_pvt.layers.norm import LayerNorm


def rows_layer_norm(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    """LayerNorm over the last axis of float32 `x`, on a ``(rows, channels)`` view of it."""
    shape = ops.shape(x)
    rows = ops.reshape(x, (-1, shape[-1]))
    # Axes as a list: a scalar reduction axis makes OpenVINO's MVN fusion throw.
    centred = rows - ops.mean(rows, axis=[-1], keepdims=True)
    variance = ops.mean(ops.square(centred), axis=[-1], keepdims=True)
    y = centred / ops.sqrt(variance + epsilon)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return ops.reshape(y, shape)


class RowsLayerNorm(LayerNorm):
    """`LayerNorm` computed on a ``(rows, channels)`` view (`rows_layer_norm`)."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = ops.cast(inputs, "float32")
        gamma = ops.cast(self.gamma, "float32") if self.scale else None
        beta = ops.cast(self.beta, "float32") if self.center else None
        return ops.cast(rows_layer_norm(x, gamma, beta, self.epsilon), self.compute_dtype)
