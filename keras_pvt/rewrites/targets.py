"""The rewrite of each target, in one place; a target without one runs the plain model.

* `XLA` (TensorFlow's ``jit_compile`` and `jax.jit`): each 3x3 depthwise conv as shifted
  multiply-adds (`shifted_conv`), several times faster there than XLA's own depthwise conv.
* `OPENVINO` (OpenVINO IR and the "openvino" engine): each `LayerNorm` on a 2-D view (`rows_norm`),
  which OpenVINO's CPU plugin runs as one native MVN.
* TFLite: none. The plain `LayerNorm` already quantizes to int8 without NEG, and the 2-D form was
  not measurably faster under XNNPACK (the converter turns both into SQUARED_DIFFERENCE and RSQRT,
  and the 2-D graph adds reshapes).
"""

from __future__ import annotations

import keras

from keras_pvt.layers.norm import LayerNorm
from keras_pvt.rewrites.rows_norm import RowsLayerNorm
from keras_pvt.rewrites.shifted_conv import ShiftedDepthwiseConv2D, is_shiftable
from keras_pvt.rewrites.swap import Rewrite

XLA = Rewrite(
    "xla_shifted_depthwise",
    {keras.layers.DepthwiseConv2D: ShiftedDepthwiseConv2D},
    is_shiftable,
)
OPENVINO = Rewrite("openvino_rows_layer_norm", {LayerNorm: RowsLayerNorm})
