"""`compile_inference` on TensorFlow: the model traced under each speed table as a `tf.function`.

Two compiled paths, both with a relaxed input signature (any batch, height and width):

* "xla": the whole graph compiled by XLA, with each 3x3 depthwise conv written as nine shifted
  multiply-adds (the `keras_pvt.kernels.tf_xla` table), since XLA's own depthwise conv is much
  slower than TensorFlow's on CPU. Fuses every elementwise chain (the depthwise conv and GELU
  included) into one pass over memory: the faster path for images up to about 512x512, at any
  batch size.
* "segments": matmuls and convolutions stay TensorFlow (oneDNN) kernels, while each elementwise
  chain (bias + LayerNorm, residual + LayerNorm, bias + exact GELU) runs as one small XLA cluster
  (the `keras_pvt.kernels.tf_fused` table) instead of several passes over memory; above 512x512,
  attention over many tokens runs in query pieces whose scores stay in cache: the faster path for
  larger images, where attention over many tokens dominates.

``precision="bfloat16"`` rebuilds the model under the ``mixed_bfloat16`` policy (variables,
LayerNorm statistics and softmax stay float32; matmuls and convolutions run in bfloat16, native on
CPUs with AMX). ``freeze_weights=True`` compiles a snapshot of the weights, with the Dense kernels
stored transposed, which XLA's dot reads faster when there are few rows. TensorFlow only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

import keras_pvt.kernels as kernels
from keras_pvt.kernels.frozen import dense_snapshot, with_frozen_dense
from keras_pvt.kernels.tf_fused import FUSED, FUSED_IN_PIECES
from keras_pvt.kernels.tf_plain import TF_PLAIN
from keras_pvt.kernels.tf_xla import TF_XLA


def compile_tensorflow(
    model: keras.Model,
    precision: str,
    strategy: str,
    freeze_weights: bool,
    checked_images: Callable[[Any], Any],
    path_for: Callable[[Any], str],
) -> Callable[[Any], Any]:
    """`compile_inference` on TensorFlow, its arguments checked by the caller.

    `checked_images` refuses what the model cannot take and returns a float32 tensor; `path_for`
    maps an image batch's shape to the path that runs it ("xla", "segments" or "segments_large").
    """
    if precision == "bfloat16":
        model = _bfloat16_copy(model)
    channels = model.inputs[0].shape[-1]
    signature = [tf.TensorSpec((None, None, None, channels), tf.float32, name="images")]
    forward, tables = _forward_and_tables(model, freeze_weights)

    def compiled(table: kernels.KernelTable, jit_compile: bool | None) -> Callable[[Any], Any]:
        @tf.function(input_signature=signature, autograph=False, jit_compile=jit_compile)
        def path(images: tf.Tensor) -> Any:
            with kernels.use(table):
                return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), forward(images))

        return path

    fused = strategy != "plain"
    paths = {
        "segments": compiled(tables["segments" if fused else "plain"], None),
        "segments_large": compiled(tables["segments_large" if fused else "plain"], None),
        "xla": compiled(tables["xla"], True),
    }

    def run(images: Any) -> Any:
        images = checked_images(images)
        return paths[path_for(images.shape)](images)

    run.model = model  # type: ignore[attr-defined]
    run.paths = paths  # type: ignore[attr-defined]  # each path by name, for `keras_pvt.engines`
    return run


def _forward_and_tables(
    model: keras.Model, freeze_weights: bool
) -> tuple[Callable[[Any], Any], dict[str, kernels.KernelTable]]:
    """`model(images, training=False)` and the kernel table of each compiled path.

    With `freeze_weights`, the forward pass runs on a snapshot of the weights taken now, and each
    table reads the Dense kernels from a transposed snapshot.
    """
    tables = {"plain": TF_PLAIN, "segments": FUSED, "segments_large": FUSED_IN_PIECES, "xla": TF_XLA}
    if not freeze_weights:
        return lambda images: model(images, training=False), tables
    # Copies made now, outside any trace: the compiled graph captures them as inputs, as it would the
    # variables (embedded as graph constants, or copied while tracing, they cost speed and memory:
    # measurements in `benchmarks/results/`).
    trainable = [tf.identity(v.value) for v in model.trainable_variables]
    non_trainable = [tf.identity(v.value) for v in model.non_trainable_variables]
    dense = dense_snapshot(model)

    def forward(images: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
        return outputs

    return forward, {name: with_frozen_dense(table, dense) for name, table in tables.items()}


def _bfloat16_copy(model: keras.Model) -> keras.Model:
    """`model` rebuilt under the ``mixed_bfloat16`` policy, with a copy of its current weight values."""
    config = model.get_config()
    for layer in config.get("layers", []):
        layer_config = layer.get("config", {})
        if layer.get("class_name") == "InputLayer" or layer_config.get("name") == "predictions":
            continue
        if "dtype" in layer_config:
            layer_config["dtype"] = "mixed_bfloat16"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
