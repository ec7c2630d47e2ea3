"""The rewrite of each target, in one place; a target without one runs the plain model.

* `XLA` (TensorFlow's ``jit_compile`` and `jax.jit`): each 3x3 depthwise conv as shifted
  multiply-adds (`shifted_conv`), several times faster there than XLA's own depthwise conv.
* `OPENVINO` (OpenVINO IR and the "openvino" engine): each `LayerNorm` on a 2-D view (`rows_norm`),
  which OpenVINO's CPU plugin runs as one native MVN.
* `TFLITE_FLOAT` (TFLite float32 and float16 files): each block's LayerNorm affines and the query
  scale folded into the layers that read them, the other norms as ``(x - mean) * inv * gamma +
  beta`` (`folded_norms`): fewer full-size passes for XNNPACK.
  The int8 modes keep the plain model: folding gamma into a kernel's input rows widens the range
  each output channel's int8 scale must cover. The 2-D LayerNorm form was not measurably faster
  under XNNPACK (the converter turns both into SQUARED_DIFFERENCE and RSQRT, plus reshapes).
"""

from __future__ import annotations

import keras

from keras_pvt.layers.attention import SpatialReductionAttention
from keras_pvt.layers.block import PVTBlock
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.rewrites.folded_norms import (
    AffineLayerNorm,
    FoldedNormAttention,
    FoldedNormBlock,
    fold_block_norms,
    foldable,
)
from keras_pvt.rewrites.rows_norm import RowsLayerNorm
from keras_pvt.rewrites.shifted_conv import ShiftedDepthwiseConv2D, is_shiftable
from keras_pvt.rewrites.swap import Rewrite

XLA = Rewrite(
    "xla_shifted_depthwise",
    {keras.layers.DepthwiseConv2D: ShiftedDepthwiseConv2D},
    is_shiftable,
)
OPENVINO = Rewrite("openvino_rows_layer_norm", {LayerNorm: RowsLayerNorm})
TFLITE_FLOAT = Rewrite(
    "tflite_folded_norms",
    {PVTBlock: FoldedNormBlock, SpatialReductionAttention: FoldedNormAttention, LayerNorm: AffineLayerNorm},
    foldable,
    fold_block_norms,
)
