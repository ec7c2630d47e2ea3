"""Frozen Dense weights: any table, with its Dense kernels read from a snapshot stored transposed.

With the kernel in the (units, inputs) layout, XLA's CPU dot runs the matmuls of few rows (stage 4
at batch 1) faster; `compile_inference(freeze_weights=True)` uses this. TensorFlow only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keras_private import nested_layers
from keras_pvt.kernels.table import KernelTable
from keras_pvt.kernels.tf_fused import dense_2d

# Dense layer -> (kernel transposed to (units, inputs), bias or None), as eager tensors.
DenseSnapshot = Mapping[keras.layers.Dense, tuple[Any, Any | None]]


def dense_snapshot(model: keras.Model) -> dict[keras.layers.Dense, tuple[Any, Any | None]]:
    """Copies of `model`'s float32 Dense weights taken now, kernels stored transposed (units, inputs)."""
    return {
        layer: (
            tf.transpose(layer.kernel.value),
            None if layer.bias is None else tf.identity(layer.bias.value),
        )
        for layer in nested_layers(model)
        if isinstance(layer, keras.layers.Dense) and layer.compute_dtype == "float32"
    }


def with_frozen_dense(table: KernelTable, snapshot: DenseSnapshot) -> KernelTable:
    """`table`, with the Dense layers in `snapshot` multiplying by its tensors (captured by the trace)."""
    dense = functools.partial(_frozen_dense, snapshot, table.dense)
    return dataclasses.replace(table, name=f"{table.name}+frozen", dense=dense)


def _frozen_dense(snapshot: DenseSnapshot, fallback: Callable[[Any, Any], Any], layer: Any, x: Any) -> Any:
    frozen = snapshot.get(layer)
    if frozen is None:
        return fallback(layer, x)
    kernel_t, bias = frozen
    return dense_2d(x, layer.units, lambda flat: tf.matmul(flat, kernel_t, transpose_b=True), bias)
