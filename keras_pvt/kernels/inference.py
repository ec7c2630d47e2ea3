"""`compile_inference`: the fastest way to run a keras-pvt model for inference, on each backend.

    predict = keras_pvt.compile_inference(model)         # float32, any batch and image size
    probs = predict(images)                             # NHWC float batch -> the model's outputs

Every path equals `model(images, training=False)` to float32 round-off. By backend:

* TensorFlow (`keras_pvt.kernels.tf_inference`): "xla" (the whole graph compiled by XLA, depthwise
  convs as shifted multiply-adds) and "segments" (TensorFlow's matmuls and convolutions, each
  elementwise chain one small XLA cluster); "auto" (the default) picks per call by the image size,
  at the crossover measured in `benchmarks/results/` (bfloat16 always takes "segments");
  ``precision="bfloat16"`` runs matmuls and convolutions in bfloat16 (outputs change by bfloat16
  round-off); ``freeze_weights=True`` compiles a snapshot of the weights.
* JAX (`keras_pvt.kernels.jax_inference`): "auto" / "xla", `jax.jit` of the model's stateless call
  with the depthwise convs as shifted multiply-adds; "plain", the same with the plain kernels.
* PyTorch (`keras_pvt.kernels.torch_inference`): "auto" / "plain", the model called with autograd
  off (`torch.no_grad`).

This module imports no TensorFlow, JAX or PyTorch: the backend's module is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_pvt.images import takes_raw_pixels  # one definition, beside preprocess_input
from keras_pvt.input_checks import check_image_batch
from keras_pvt.layers.size_check import model_min_image_size

PRECISIONS = ("float32", "bfloat16")
STRATEGIES = ("auto", "segments", "xla", "plain")
# The strategies and precisions each backend has (TensorFlow: all of them).
BACKEND_STRATEGIES = {"tensorflow": STRATEGIES, "jax": ("auto", "xla", "plain"), "torch": ("auto", "plain")}
BACKEND_PRECISIONS = {"tensorflow": PRECISIONS, "jax": ("float32",), "torch": ("float32",)}
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
        precision: "float32" (outputs equal the model's to round-off) or, on TensorFlow,
            "bfloat16" (AMX CPUs; float32 outputs, bfloat16 accuracy).
        strategy: on TensorFlow "segments" (TensorFlow matmuls and convs, XLA-fused elementwise
            chains), "xla" (the whole graph compiled by XLA), "auto" ("xla" for images of at most
            `AUTO_XLA_MAX_IMAGE_PIXELS` pixels, i.e. 512x512, "segments" above), or "plain" (a bare
            `tf.function`, for comparison); on JAX "auto" or "xla" (`jax.jit` with shifted
            depthwise convs) or "plain" (`jax.jit` of the plain kernels); on PyTorch "auto" or
            "plain" (autograd off).
        freeze_weights: compile a snapshot of the weights taken now: the callable then ignores
            later changes to `model`'s weights, and holds copies of them. On TensorFlow the Dense
            kernels are stored transposed (the layout XLA's dot reads fastest for few rows): faster
            at small batches (see `benchmarks/results/`). With False (the default) it reads the
            model's variables on every call. (bfloat16 always works on a bfloat16 copy of the
            weights taken now.)

    The callable accepts NumPy arrays or tensors of any batch size and image size (float32) and
    returns float32 tensors of the backend (a dict for `features_only` models). Each new input
    shape costs one compilation on the XLA paths. Before running it refuses, with one `ValueError`
    naming the shape and dtype: a rank or channel count the model cannot take, images below the
    model's minimum size, and integer images when the model has no preprocessing inside (call
    `keras_pvt.preprocess_input` first).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}, got {precision!r}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {strategy!r}.")
    backend = keras.backend.backend()
    if backend not in BACKEND_STRATEGIES:
        raise ValueError(
            f"compile_inference runs on the TensorFlow, JAX and PyTorch backends, but Keras runs on "
            f"{backend!r}; set KERAS_BACKEND, or call the model directly."
        )
    for name, value, allowed in (
        ("strategy", strategy, BACKEND_STRATEGIES[backend]),
        ("precision", precision, BACKEND_PRECISIONS[backend]),
    ):
        if value not in allowed:
            raise ValueError(
                f"`{name}={value!r}` needs the TensorFlow backend; on {backend!r} it must be one of "
                f"{allowed}."
            )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError("compile_inference needs a model with one 4-D (NHWC) input.")
    checked_images = image_checker(model)
    if backend == "jax":
        from keras_pvt.kernels.jax_inference import compile_jax

        return compile_jax(model, strategy, freeze_weights, checked_images)
    if backend == "torch":
        from keras_pvt.kernels.torch_inference import compile_torch

        return compile_torch(model, freeze_weights, checked_images)
    from keras_pvt.kernels.tf_inference import compile_tensorflow

    def path_for(shape: Any) -> str:
        if resolve_strategy(strategy, shape, precision) == "xla":
            return "xla"
        if strategy != "plain" and _pixels(shape) > ATTENTION_PIECES_MIN_IMAGE_PIXELS:
            return "segments_large"
        return "segments"

    return compile_tensorflow(model, precision, strategy, freeze_weights, checked_images, path_for)


def image_checker(model: keras.Model) -> Callable[[Any], Any]:
    """A function from an image batch to a float32 tensor that first refuses what `model` cannot take."""
    channels = model.inputs[0].shape[-1]
    minimum, raw_pixels_ok = model_min_image_size(model), takes_raw_pixels(model)

    def checked_images(images: Any) -> Any:
        if not hasattr(images, "shape") or not hasattr(images, "dtype"):
            images = np.asarray(images)
        shape, dtype = tuple(images.shape), keras.backend.standardize_dtype(images.dtype)
        check_image_batch(shape, dtype, channels=channels, minimum=minimum, raw_pixels_ok=raw_pixels_ok)
        return ops.cast(images, "float32")

    return checked_images


def resolve_strategy(strategy: str, shape: Any, precision: str = "float32") -> str:
    """The path `strategy` takes on TensorFlow for an NHWC batch of `shape`: "auto" becomes "xla" or
    "segments".

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
