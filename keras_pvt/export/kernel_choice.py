"""The kernel table each export target is traced with (`keras_pvt.kernels`): one place that decides.

Every table computes the same maths to float32 round-off; they differ in the graph patterns the
target's optimizer recognises and in which ops full-integer quantization can run in int8.

* OpenVINO: the canonical table (`kernels.canonical`). Its LayerNorm on a ``(rows, channels)``
  view runs as the CPU plugin's native MVN; the default NHWC form is fused to MVN too, but the
  plugin decomposes a 4-D MVN over the last axis back into reductions (docs/deployment.md,
  "OpenVINO IR"), and was measured faster there.
* TFLite, every mode: the backend's default table. Its LayerNorm (``x * inv + (beta - mean * inv)``)
  quantizes to int8 without NEG; for float32 under XNNPACK the canonical table was not measurably
  faster (the converter turns both into SQUARED_DIFFERENCE and RSQRT, and the canonical graph adds
  reshapes), so float32 keeps the default too.
"""

from __future__ import annotations

import dataclasses

from keras_pvt.kernels.canonical import CANONICAL
from keras_pvt.kernels.table import KernelTable
from keras_pvt.kernels.tf_plain import TF_PLAIN

# The canonical kernels with the TensorFlow default's run-time image-size assertion, for graphs
# whose height and width are dynamic (OpenVINO's frontend drops the assertion, as TFLite does).
TF_CANONICAL = dataclasses.replace(
    CANONICAL, name="tf_canonical", assert_min_image_size=TF_PLAIN.assert_min_image_size
)


def tflite_kernel_table(quantize: str) -> KernelTable | None:
    """The table a TFLite conversion in mode `quantize` traces with; None = the backend's default."""
    return None


def openvino_kernel_table() -> KernelTable | None:
    """The table an OpenVINO conversion traces with; None = the backend's default."""
    return TF_CANONICAL
