"""`compile_inference`: the fastest way to run a keras-pvt model for inference (TensorFlow backend).

    predict = keras_pvt.compile_inference(model)         # float32, any batch and image size
    probs = predict(images)                             # NHWC float batch -> the model's outputs

Two compiled paths, both with a relaxed input signature (any batch, height and width) and both
equal to `model(images, training=False)` to float32 round-off:

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

"auto" (the default) picks per call by the image size, at the crossover measured in
`benchmarks/results/` (bfloat16 always takes "segments"). ``precision="bfloat16"`` rebuilds the
model under the ``mixed_bfloat16`` policy (variables, LayerNorm statistics and softmax stay float32;
matmuls and convolutions run in bfloat16, native on CPUs with AMX) and changes the outputs by
bfloat16 round-off; `benchmarks/` reports its speed and accuracy cost.
``freeze_weights=True`` compiles a snapshot of the weights (for serving fixed weights), with the
Dense kernels stored transposed, which XLA's dot reads faster when there are few rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_pvt.kernels as kernels
from keras_pvt.input_checks import check_image_batch, dtype_name
from keras_pvt.kernels.frozen import dense_snapshot, with_frozen_dense
from keras_pvt.kernels.tf_fused import FUSED, FUSED_IN_PIECES
from keras_pvt.kernels.tf_plain import TF_PLAIN
from keras_pvt.kernels.tf_xla import TF_XLA
from keras_pvt.layers.size_check import model_min_image_size

PRECISIONS = ("float32", "bfloat16")
STRATEGIES = ("auto", "segments", "xla", "plain")
# "auto" compiles the whole graph with XLA for images of up to this many pixels (H * W), any batch:
# there XLA's fused elementwise passes win; on bigger images the attention matmuls and softmax over
# many tokens dominate, and TensorFlow's oneDNN kernels win.
AUTO_XLA_MAX_IMAGE_PIXELS = 512 * 512
# The "segments" path runs attention in query pieces for images of more than this many pixels (below,
# the size test would only add overhead; measurements: `benchmarks/results/`).
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
            batches (see `benchmarks/results/`), but the callable then ignores
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
    if precision == "bfloat16":
        model = _bfloat16_copy(model)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError("compile_inference needs a model with one 4-D (NHWC) input.")
    channels = model.inputs[0].shape[-1]
    checked_images = _input_check(model, channels)
    signature = [tf.TensorSpec((None, None, None, channels), tf.float32, name="images")]
    forward, tables = _forward_and_tables(model, freeze_weights)

    def compiled(table: kernels.KernelTable, jit_compile: bool | None) -> Callable[[Any], Any]:
        @tf.function(input_signature=signature, autograph=False, jit_compile=jit_compile)
        def path(images: tf.Tensor) -> Any:
            with kernels.use(table):
                return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), forward(images))

        return path

    fused = strategy != "plain"
    segments = compiled(tables["segments" if fused else "plain"], None)
    segments_large = compiled(tables["segments_large" if fused else "plain"], None)
    xla = compiled(tables["xla"], True)

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

    bfloat16 always takes "segments": XLA's CPU dots do not use AMX, and run much slower there.
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
