"""Kernels: the named computations the layers call, with one table of implementations per trace.

Each layer has one forward pass (`keras_pvt.layers`) that calls `kernels.dense`, `kernels.add_norm`
and the other functions of `table`; which implementation runs is chosen per trace:

* `plain`: Keras layers and `keras.ops`, every backend (the default, and the reference maths);
* `tf_plain`: the TensorFlow default, `plain` plus a run-time image-size assertion in graphs;
* `tf_training`: XLA-compiled GELU and LayerNorm, while a TensorFlow training step is traced;
* `tf_fused`, `tf_xla`, `frozen`: the inference speed tables `compile_inference` picks
  (`keras_pvt.kernels.inference`).

Every table computes the plain maths, to float32 round-off. The `tf_*`, `frozen` and `inference`
modules import TensorFlow; `table`, `plain`, `activations` and `shifted_conv` do not.
"""

import keras

from keras_pvt.kernels import plain, table
from keras_pvt.kernels.table import (
    KernelTable,
    add_norm,
    assert_min_image_size,
    attention,
    conv_norm,
    conv_norm_gelu,
    current,
    dense,
    depthwise_conv_gelu,
    layer_norm,
    normalize,
    use,
)

if keras.backend.backend() == "tensorflow":
    from keras_pvt.kernels import tf_plain, tf_training

    table.register_backend_tables(tf_plain.TF_PLAIN, tf_training.TF_TRAINING, tf_training.applies)
else:
    table.register_backend_tables(plain.PLAIN)

__all__ = [
    "KernelTable",
    "add_norm",
    "assert_min_image_size",
    "attention",
    "conv_norm",
    "conv_norm_gelu",
    "current",
    "dense",
    "depthwise_conv_gelu",
    "layer_norm",
    "normalize",
    "use",
]
