"""The rewrite each export target is traced with (`keras_pvt.rewrites`): one place that decides.

Every rewrite computes the plain model's maths to float32 round-off; they differ in the graph
patterns the target's optimizer recognises.

* OpenVINO: `keras_pvt.rewrites.OPENVINO`, each LayerNorm on a ``(rows, channels)`` view, which the
  CPU plugin runs as its native MVN; the plain NHWC form is fused to MVN too, but the plugin
  decomposes a 4-D MVN over the last axis back into reductions (docs/deployment.md, "OpenVINO IR"),
  and was measured faster there.
* TFLite, every mode: none. The plain LayerNorm (``x * inv + (beta - mean * inv)``) quantizes to
  int8 without NEG; for float32 under XNNPACK the 2-D form was not measurably faster (the converter
  turns both into SQUARED_DIFFERENCE and RSQRT, and the 2-D graph adds reshapes).
"""

from __future__ import annotations

from keras_pvt.rewrites import OPENVINO, Rewrite


def tflite_kernel_table(quantize: str) -> Rewrite | None:
    """The rewrite a TFLite conversion in mode `quantize` traces; None = the plain model."""
    return None


def openvino_kernel_table() -> Rewrite | None:
    """The rewrite an OpenVINO conversion traces; None = the plain model."""
    return OPENVINO
