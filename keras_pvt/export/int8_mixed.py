"""The mixed int8 recipe of `quantize="int8"`: what LiteRT's XNNPACK delegate runs fast in int8.

Full-integer quantization (`"int8-full"`) makes every op int8, but the XNNPACK delegate (LiteRT's
default CPU delegate) has no int8 kernel for several ops a transformer needs; each such op splits
the graph and runs on LiteRT's slow reference int8 kernels, so a full-int8 PVT-v2-b0 runs 2-3.5x
slower than float32 (77 partitions). The mixed recipe quantizes the ops that carry the work and the weights
(convolutions, depthwise convolutions, FULLY_CONNECTED) and the data movement between them,
calibrated on representative images, and keeps `FLOAT_OPS` in float32, so that the whole graph,
QUANTIZE/DEQUANTIZE included, stays in one XNNPACK partition.

Mechanism: `tf.lite.experimental.QuantizationDebugger` with
`QuantizationDebugOptions(denylisted_ops=...)` and `get_nondebug_quantized_model()`. It is the
public TensorFlow API that quantizes all but named op types (the converter's own options only
choose between all-int8 and int8-with-fallback, and the fallback keeps ops XNNPACK cannot run in
int8); it ships with TensorFlow, whereas `ai-edge-quantizer` would be a new dependency for the same
result. The debugger also builds (and loads in `tf.lite.Interpreter`, which TensorFlow has marked
deprecated) an instrumented copy of the model; if a TensorFlow upgrade drops either, this module is
the one place to change.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# TFLite op types kept in float32, and why (LiteRT 2.3 XNNPACK; measured on PVT-v2 B0):
# - SOFTMAX, GELU, RSQRT, SQUARED_DIFFERENCE: XNNPACK has no int8 kernel for them.
# - BATCH_MATMUL: XNNPACK takes the second operand in int8 only with zero point 0, which an
#   activation (keys, values) calibrated with asymmetric int8 does not have.
# - MEAN, SUB, MUL, ADD: the rest of the LayerNorm, which then runs in float as a whole, with
#   one QUANTIZE after it. XNNPACK's int8 ADD/SUB refuse input-to-output scale ratios outside
#   [2^-10, 2^8): the norm's `variance + eps` and `beta - mean * inv` (beta = 0 when freshly
#   initialised) hit that limit, so an int8 ADD/SUB there splits the graph (31 partitions for a
#   trained-like B0 instead of 1). A float norm is also the faster and the more accurate: no
#   QUANTIZE/DEQUANTIZE between its ops, no int8 round-off in the variance. The residual ADDs
#   become float too; XNNPACK runs them, and the QUANTIZE/DEQUANTIZE around them, in the same
#   partition.
# Left int8: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (nearly all the work and weights) and
# the RESHAPE/TRANSPOSE/SPLIT/PAD between them.
FLOAT_OPS: tuple[str, ...] = (
    "SOFTMAX",
    "GELU",
    "RSQRT",
    "SQUARED_DIFFERENCE",
    "BATCH_MATMUL",
    "MEAN",
    "SUB",
    "MUL",
    "ADD",
)


def quantize_mixed(
    converter: Any,
    representative_dataset: Callable[[], Iterable[Sequence[Any]]],
    float_ops: Sequence[str] = FLOAT_OPS,
) -> bytes:
    """The flatbuffer of `converter` quantized to int8 except the op types `float_ops`.

    `converter` is a `tf.lite.TFLiteConverter` with builtin ops; its optimizations and
    representative dataset are set here. Input and output stay float32.
    """
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
    with warnings.catch_warnings():  # the debugger runs its check model on tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative_dataset, debug_options=options
        )
    return debugger.get_nondebug_quantized_model()
