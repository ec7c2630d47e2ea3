"""The canonical kernel table: LayerNorm, GELU and attention in the forms graph compilers fuse.

Same maths as the plain table (to float32 round-off), written for OpenVINO's CPU plugin:

* LayerNorm as ``(x - mean) / sqrt(var + eps) * gamma + beta`` over a 2-D ``(rows, channels)``
  view. OpenVINO fuses the pattern into one MVN op, and its CPU plugin (2026.4) runs an MVN over the
  last axis of a 2-D or 3-D tensor natively, but decomposes one over the last axis alone of a 4-D
  NHWC map into reductions and elementwise kernels again.
* exact GELU and attention as in the plain table: OpenVINO already fuses
  ``0.5 * x * (1 + erf(x / sqrt(2)))`` to Gelu (erf mode) and ``softmax(q @ keys) @ values`` to
  ScaledDotProductAttention (every attention of B0 once the norms are 2-D, 7 of 8 before).

Keras ops only, every backend. The TensorFlow export table (with the run-time image-size
assertion) is `keras_pvt.export.kernel_choice.TF_CANONICAL`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras import ops

from keras_pvt.kernels.plain import PLAIN


def normalize(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    """LayerNorm over the last axis of float32 `x`, on a ``(rows, channels)`` view of it."""
    shape = ops.shape(x)
    rows = ops.reshape(x, (-1, shape[-1]))
    # Axes as a list: a scalar reduction axis makes OpenVINO 2026.4's MVN fusion throw.
    centred = rows - ops.mean(rows, axis=[-1], keepdims=True)
    variance = ops.mean(ops.square(centred), axis=[-1], keepdims=True)
    y = centred / ops.sqrt(variance + epsilon)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return ops.reshape(y, shape)


CANONICAL = dataclasses.replace(PLAIN, name="canonical", normalize=normalize)
