"""`compile_inference`: the fastest way to run a keras-pvt model for inference (TensorFlow backend).

    predict = keras_pvt.compile_inference(model)         # float32, any batch and image size
    probs = predict(images)                             # NHWC float batch -> the model's outputs

Two compiled paths, both with a relaxed input signature (any batch, height and width) and both
equal to `model(images, training=False)` to float32 round-off:

* "xla": the whole graph compiled by XLA, with each 3x3 depthwise conv written as nine shifted
  multiply-adds (`keras_pvt.layers.fusion.whole_graph_xla`), since XLA's own depthwise conv is
  ~30x slower than TensorFlow's on CPU. Fuses every elementwise chain (the depthwise conv and GELU
  included) into one pass over memory: the faster path for images up to about 512x512, at any
  batch size.
* "segments": matmuls and convolutions stay TensorFlow (oneDNN) kernels, while each elementwise
  chain (bias + LayerNorm, residual + LayerNorm, bias + exact GELU) runs as one small XLA cluster
  (`keras_pvt.layers.fusion.fused_segments`) instead of three to six passes over memory; above
  512x512, attention over many tokens runs in query pieces whose scores stay in cache: the faster
  path for larger images, where attention over many tokens dominates.

"auto" (the default) picks per call by the image size (measured crossover on a 2-core Xeon: XLA is
12-21% faster at 224 and 512, 4-22% slower at 768 and 1024; bfloat16 always takes "segments").
``precision="bfloat16"``
rebuilds the model under the ``mixed_bfloat16`` policy (variables, LayerNorm statistics and softmax
stay float32; matmuls and convolutions run in bfloat16, native on CPUs with AMX) and changes the
outputs by bfloat16 round-off; `benchmarks/` reports its speed and accuracy cost.
``freeze_weights=True`` compiles a snapshot of the weights (for serving fixed weights), with the
Dense kernels stored transposed, which XLA's dot reads faster when there are few rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_pvt.input_checks import check_image_batch, dtype_name
from keras_pvt.layers.size_check import model_min_image_size

PRECISIONS = ("float32", "bfloat16")
STRATEGIES = ("auto", "segments", "xla", "plain")
# "auto" compiles the whole graph with XLA for images of up to this many pixels (H * W), any batch:
# there XLA's fused elementwise passes win; on bigger images the attention matmuls and softmax over
# many tokens dominate, and TensorFlow's oneDNN kernels win.
AUTO_XLA_MAX_IMAGE_PIXELS = 512 * 512
# The "segments" path runs attention in query pieces for images of more than this many pixels (measured:
# ~10% faster at 1024x1024, no change at 768x768; below, the size test would only add overhead).
ATTENTION_PIECES_MIN_IMAGE_PIXELS = 512 * 512


def compile_inference(
    model: keras.Model, precision: str = "float32", strategy: str = "auto", freeze_weights: bool = False
) -> Callable[[Any], Any]:
    """A compiled callable from an NHWC image batch to `model`'s outputs (inference mode).

    Args:
        model: a keras-pvt model (any head, `features_only` included) or any Keras model whose
            input is a 4-D NHWC batch.
        precision: "float32" (outputs equal the model's to round-off) or "bfloat16" (AMX CPUs;
            float32 outputs, bfloat16 accuracy).
        strategy: "segments" (TensorFlow matmuls and convs, XLA-fused elementwise chains),
            "xla" (the whole graph compiled by XLA), "auto" ("xla" for images of at most
            `AUTO_XLA_MAX_IMAGE_PIXELS` pixels, i.e. 512x512, "segments" above), or
            "plain" (a bare `tf.function`, for comparison).
        freeze_weights: compile a snapshot of the weights taken now, with the Dense kernels
            stored transposed (the layout XLA's dot reads fastest for few rows): faster at small
            batches (B2 ~7% at batch 1, B0 ~4%; batch 16 the same), but the callable then ignores
            later changes to `model`'s weights, and holds copies of them. With False (the
            default) it reads the model's variables on every call. (bfloat16 always works on a
            bfloat16 copy of the weights taken now.)

    The callable accepts NumPy arrays or tensors of any batch size and image size (float32) and
    returns float32 tensors (a dict for `features_only` models). Each new input shape costs one
    compilation on the XLA paths. Before running it refuses, with one `ValueError` naming the shape
    and dtype: a rank or channel count the model cannot take, images below the model's minimum
    size, and integer images when the model has no preprocessing inside (call
    `keras_pvt.preprocess_input` first).
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"compile_inference needs the TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow, or call the model directly."
        )
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}, got {precision!r}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {strategy!r}.")
    import tensorflow as tf

    from keras_pvt.layers.fusion import fused_segments, whole_graph_xla

    if precision == "bfloat16":
        model = _bfloat16_copy(model)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError("compile_inference needs a model with one 4-D (NHWC) input.")
    channels = model.inputs[0].shape[-1]
    checked_images = _input_check(model, channels)
    signature = [tf.TensorSpec((None, None, None, channels), tf.float32, name="images")]

    forward = _frozen_forward(model) if freeze_weights else lambda images: model(images, training=False)

    def float32(outputs: Any) -> Any:
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), outputs)

    def segments_path(attention_pieces: bool) -> Callable[[Any], Any]:
        @tf.function(input_signature=signature, autograph=False)
        def segments(images: tf.Tensor) -> Any:
            with fused_segments(strategy != "plain", attention_pieces=attention_pieces):
                return float32(forward(images))

        return segments

    segments, segments_large = segments_path(False), segments_path(True)

    @tf.function(input_signature=signature, autograph=False, jit_compile=True)
    def xla(images: tf.Tensor) -> Any:
        with whole_graph_xla():
            return float32(forward(images))

    def run(images: Any) -> Any:
        images = checked_images(images)
        if resolve_strategy(strategy, images.shape, precision) == "xla":
            return xla(images)
        if strategy != "plain" and _pixels(images.shape) > ATTENTION_PIECES_MIN_IMAGE_PIXELS:
            return segments_large(images)
        return segments(images)

    run.model = model  # type: ignore[attr-defined]
    return run


def _input_check(model: keras.Model, channels: int | None) -> Callable[[Any], Any]:
    """A function from an image batch to a float32 tensor that first refuses what `model` cannot take."""
    import tensorflow as tf

    minimum, raw_pixels_ok = model_min_image_size(model), takes_raw_pixels(model)

    def checked_images(images: Any) -> Any:
        if not hasattr(images, "shape") or not hasattr(images, "dtype"):
            images = np.asarray(images)
        shape, dtype = tuple(images.shape), dtype_name(images.dtype)
        check_image_batch(shape, dtype, channels=channels, minimum=minimum, raw_pixels_ok=raw_pixels_ok)
        return tf.cast(images, tf.float32)

    return checked_images


def takes_raw_pixels(model: keras.Model) -> bool:
    """Whether `model` normalises inside: an integer input, or a Rescaling/Normalization layer."""
    if keras.backend.standardize_dtype(model.inputs[0].dtype).startswith(("int", "uint")):
        return True
    preprocessing = (keras.layers.Rescaling, keras.layers.Normalization)
    return any(
        isinstance(layer, preprocessing) or (isinstance(layer, keras.Model) and takes_raw_pixels(layer))
        for layer in model.layers
    )


def resolve_strategy(strategy: str, shape: Any, precision: str = "float32") -> str:
    """The path `strategy` takes for an NHWC batch of `shape`: "auto" becomes "xla" or "segments".

    bfloat16 always takes "segments": XLA's CPU dots do not use AMX, and run ~7x slower there.
    """
    if strategy != "auto":
        return strategy
    if precision == "bfloat16":
        return "segments"
    return "xla" if _pixels(shape) <= AUTO_XLA_MAX_IMAGE_PIXELS else "segments"


def _pixels(shape: Any) -> int:
    """Height x width of an NHWC shape (0 where unknown)."""
    height, width = (int(d) if d is not None else 0 for d in shape[1:3])
    return height * width


def _frozen_forward(model: keras.Model) -> Callable[[Any], Any]:
    """`model(images, training=False)` on a snapshot of the weights taken now (`freeze_weights`)."""
    import tensorflow as tf

    from keras_pvt.layers.fusion import dense_snapshot, frozen_dense

    # Copies made now, outside any trace: the compiled graph captures them as inputs, as it would the
    # variables. Embedded as graph constants instead, all weights made B2 ~27% slower under XLA, and
    # the transposed Dense kernels alone were a few percent faster but cost B2 ~700 MiB more peak
    # memory (copies made while tracing and compiling).
    trainable = [tf.identity(v.value) for v in model.trainable_variables]
    non_trainable = [tf.identity(v.value) for v in model.non_trainable_variables]
    dense = dense_snapshot(model)

    def forward(images: Any) -> Any:
        with frozen_dense(dense):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
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
