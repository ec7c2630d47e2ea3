"""The rewrite each export target is traced with (`keras_pvt.rewrites`): one place that decides.

Every rewrite computes the plain model's maths to float32 round-off; they differ in the graph
patterns the target's optimizer recognises.

* OpenVINO: `keras_pvt.rewrites.OPENVINO`, each LayerNorm on a ``(rows, channels)`` view, which the
  CPU plugin runs as its native MVN; the plain NHWC form is fused to MVN too, but the plugin
  decomposes a 4-D MVN over the last axis back into reductions (docs/deployment.md, "OpenVINO IR"),
  and was measured faster there.
* TFLite float32 and float16: `keras_pvt.rewrites.TFLITE_FLOAT`, each block's LayerNorm affines
  and the query scale folded into the layers that read them (fewer full-size passes under XNNPACK;
  `benchmarks/results/tflite_norm_folding.md`).
* TFLite int8 modes (and "dynamic", int8 weights): the plain model. Its LayerNorm
  (``x * inv + (beta - mean * inv)``) quantizes to int8 without NEG, and folding gamma into a
  kernel's input rows widens the range each output channel's int8 scale must cover.
"""

from __future__ import annotations

from keras_pvt.rewrites import OPENVINO, TFLITE_FLOAT, Rewrite

FLOAT_MODES = ("none", "float16")  # TFLite modes whose weights stay float


def tflite_kernel_table(quantize: str) -> Rewrite | None:
    """The rewrite a TFLite conversion in mode `quantize` traces; None = the plain model."""
    return TFLITE_FLOAT if quantize in FLOAT_MODES else None


def openvino_kernel_table() -> Rewrite | None:
    """The rewrite an OpenVINO conversion traces; None = the plain model."""
    return OPENVINO
