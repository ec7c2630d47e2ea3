"""`compile_inference` on TensorFlow, engines "xla" and "plain": the model as one `tf.function`.

"xla" compiles the whole graph with XLA (``jit_compile``), on a copy of the model with the
depthwise convs rewritten as shifted multiply-adds (`keras_pvt.rewrites.XLA`), run with the
original's variables (or a snapshot of them) through `stateless_call`. "plain" traces the model as
it is. Both take a relaxed input signature (any batch, height and width): "xla" compiles once per
input shape. ``precision="bfloat16"`` rebuilds the model under the ``mixed_bfloat16`` policy
(variables, LayerNorm statistics and softmax stay float32). TensorFlow only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from keras_pvt.inference.weights import check_same_variables, weights_source
from keras_pvt.rewrites import XLA, rewritten


def compile_tensorflow(
    model: keras.Model,
    engine: str,
    precision: str,
    freeze_weights: bool,
    checked_images: Callable[[Any], Any],
) -> Callable[[Any], Any]:
    """`compile_inference` on TensorFlow for engine "xla" or "plain", its arguments checked by the
    caller (`checked_images` refuses what the model cannot take and returns a float32 tensor)."""
    if precision == "bfloat16":
        model = _bfloat16_copy(model)
    channels = model.inputs[0].shape[-1]
    signature = [tf.TensorSpec((None, None, None, channels), tf.float32, name="images")]
    forward = _forward(model, engine, freeze_weights)

    @tf.function(input_signature=signature, autograph=False, jit_compile=engine == "xla" or None)
    def compiled(images: tf.Tensor) -> Any:
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), forward(images))

    def run(images: Any) -> Any:
        return compiled(checked_images(images))

    run.model = model  # type: ignore[attr-defined]
    return run


def _forward(model: keras.Model, engine: str, freeze_weights: bool) -> Callable[[Any], Any]:
    """``model(images, training=False)``, on the engine's rewrite of it and the chosen weights."""
    runner = rewritten(model, XLA) if engine == "xla" else model
    if runner is model and not freeze_weights:
        return lambda images: model(images, training=False)
    check_same_variables(model, runner)
    # Copies made now, outside any trace: the compiled graph captures them as inputs, as it would
    # the variables (as graph constants they cost speed and memory).
    weights = weights_source(model, freeze_weights, tf.identity)

    def forward(images: Any) -> Any:
        outputs, _ = runner.stateless_call(*weights(), images, training=False)
        return outputs

    return forward


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
