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

Engines (``engine=``, TensorFlow backend; `keras_pvt.engines`): "backend" (the default) is the
backend's own compiler above, with `strategy` choosing its path; "xla" and "segments" are those two
TensorFlow paths by name; "litert" (a float32 `.tflite` per input shape, run by LiteRT/XNNPACK) and
"openvino" (an OpenVINO model per input shape, `keras-pvt[openvino]`) run a snapshot of the weights
(``freeze_weights=True``); "auto" measures every available engine on each new input shape and keeps
the fastest. First-call cost, thread-safety and memory of each: the `keras_pvt.engines` docstring.

This module imports no TensorFlow, JAX or PyTorch: the backend's module (or `keras_pvt.engines`)
is imported on first use.
"""

from __future__ import annotations

import numbers
import os
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
# Who runs the model: the backend's own compiler (its path chosen by `strategy`), one TensorFlow path
# by name, a runtime fed a per-shape conversion, or the fastest of them measured per shape.
ENGINES = ("backend", "xla", "segments", "litert", "openvino", "auto")
# The engines that run a snapshot of the weights converted per input shape (float32 only).
SNAPSHOT_ENGINES = ("litert", "openvino", "auto")
# "auto" compiles the whole graph with XLA for images of up to this many pixels (H * W), any batch:
# there XLA's fused elementwise passes win; on bigger images the attention matmuls and softmax over
# many tokens dominate, and TensorFlow's oneDNN kernels win.
AUTO_XLA_MAX_IMAGE_PIXELS = 512 * 512
# The "segments" path runs attention in query pieces for images of more than this many pixels (below,
# the size test would only add overhead; measurements: `benchmarks/results/`).
ATTENTION_PIECES_MIN_IMAGE_PIXELS = 512 * 512


def compile_inference(
    model: keras.Model,
    precision: str = "float32",
    strategy: str = "auto",
    freeze_weights: bool = False,
    *,
    engine: str = "backend",
    threads: int | None = None,
    engine_cache: str | os.PathLike | None = None,
) -> Callable[[Any], Any]:
    """A compiled callable from an NHWC image batch to `model`'s outputs (inference mode).

    Args:
        model: a keras-pvt model (any head, `features_only` included) or any Keras model whose
            input is a 4-D NHWC batch.
        precision: "float32" (outputs equal the model's to round-off) or, on TensorFlow,
            "bfloat16" (AMX CPUs; float32 outputs, bfloat16 accuracy).
        strategy: the path of ``engine="backend"``: on TensorFlow "segments" (TensorFlow matmuls
            and convs, XLA-fused elementwise chains), "xla" (the whole graph compiled by XLA),
            "auto" ("xla" for images of at most `AUTO_XLA_MAX_IMAGE_PIXELS` pixels, i.e.
            512x512, "segments" above), or "plain" (a bare `tf.function`, for comparison); on
            JAX "auto" or "xla" (`jax.jit` with shifted depthwise convs) or "plain" (`jax.jit`
            of the plain kernels); on PyTorch "auto" or "plain" (autograd off). Other engines
            take no strategy (leave it "auto").
        freeze_weights: compile a snapshot of the weights taken now: the callable then ignores
            later changes to `model`'s weights, and holds copies of them. On TensorFlow the Dense
            kernels are stored transposed (the layout XLA's dot reads fastest for few rows): faster
            at small batches (see `benchmarks/results/`). With False (the default) it reads the
            model's variables on every call. (bfloat16 always works on a bfloat16 copy of the
            weights taken now.)
        engine: who runs it (on TensorFlow, except "backend"): "backend" (the default: the
            backend's own compiler, its path chosen by `strategy`); "xla" or "segments" (that
            TensorFlow path at every size); "litert" (a float32 `.tflite` per input shape, run
            by LiteRT/XNNPACK); "openvino" (an OpenVINO model per input shape, on the CPU;
            ``pip install 'keras-pvt[openvino]'``); "auto" (on each new input shape, every
            installed one of these four is built, checked and timed; the fastest is kept).
            "litert", "openvino" and "auto" need ``freeze_weights=True`` and float32.
            First-call cost and thread-safety: `keras_pvt.engines`, docs/performance.md.
        threads: LiteRT and OpenVINO threads (also inside "auto"); None = the CPUs this process
            may use. Refused for TensorFlow's engines (`tf.config.threading` sets theirs).
        engine_cache: with ``engine="auto"``, a JSON file remembering the choice per input shape,
            machine, model and threads across processes (created if missing; a file keras-pvt
            did not write is never replaced: `OutputRefusedError`, raised now).

    The callable accepts NumPy arrays or tensors of any batch size and image size (float32) and
    returns float32 tensors of the backend (a dict for `features_only` models). Each new input
    shape costs one compilation on the XLA paths, one conversion on LiteRT and OpenVINO. Before
    running it refuses, with one `ValueError` naming the shape and dtype: a rank or channel count
    the model cannot take, images below the model's minimum size, and integer images when the
    model has no preprocessing inside (call `keras_pvt.preprocess_input` first).
    """
    backend = check_backend(strategy, precision)
    check_engine(engine, backend, strategy, precision, freeze_weights, threads, engine_cache)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError("compile_inference needs a model with one 4-D (NHWC) input.")
    checked_images = image_checker(model)
    if engine in ("xla", "segments"):
        strategy = engine
    elif engine != "backend":
        from keras_pvt.engines import compile_engine

        threads = None if threads is None else int(threads)
        return compile_engine(model, engine, checked_images, threads=threads, engine_cache=engine_cache)
    if backend == "jax":
        from keras_pvt.kernels.jax_inference import compile_jax

        return compile_jax(model, strategy, freeze_weights, checked_images)
    if backend == "torch":
        from keras_pvt.kernels.torch_inference import compile_torch

        return compile_torch(model, freeze_weights, checked_images)
    from keras_pvt.kernels.tf_inference import compile_tensorflow

    return compile_tensorflow(
        model,
        precision,
        strategy,
        freeze_weights,
        checked_images,
        lambda shape: tensorflow_path(strategy, shape, precision),
    )


def check_backend(strategy: str, precision: str) -> str:
    """The Keras backend, once `strategy` and `precision` are known to run on it (else ValueError)."""
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
    return backend


def check_engine(
    engine: str,
    backend: str,
    strategy: str,
    precision: str,
    freeze_weights: bool,
    threads: int | None,
    engine_cache: Any,
) -> None:
    """Refuse, before any work, an `engine` that cannot run with the other arguments."""
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}, got {engine!r}.")
    if engine == "backend":
        if threads is not None or engine_cache is not None:
            raise ValueError(
                "`threads` and `engine_cache` apply to engine='litert', 'openvino' or 'auto'; "
                "the backend's engine uses the backend's own thread pools."
            )
        return
    if backend != "tensorflow":
        raise ValueError(
            f"`engine={engine!r}` needs the TensorFlow backend (it runs or converts a TensorFlow "
            f"graph); on {backend!r} use engine='backend' with strategy one of "
            f"{BACKEND_STRATEGIES[backend]}."
        )
    if strategy not in ("auto", engine):
        raise ValueError(
            f"`strategy={strategy!r}` chooses the path of engine='backend'; engine={engine!r} takes "
            "no strategy: leave it 'auto', or use engine='backend' with that strategy."
        )
    if engine in ("xla", "segments"):
        if threads is not None or engine_cache is not None:
            raise ValueError(
                f"`threads` and `engine_cache` apply to engine='litert', 'openvino' or 'auto'; "
                f"engine={engine!r} runs on TensorFlow's thread pools (tf.config.threading)."
            )
        return
    if precision != "float32":
        raise ValueError(
            f"`engine={engine!r}` runs float32 files only, got precision={precision!r}; "
            "bfloat16 runs on engine='backend' or 'segments'."
        )
    if not freeze_weights:
        raise ValueError(
            f"`engine={engine!r}` converts a snapshot of the weights for each input shape, so it "
            "would not follow later changes to the model: pass freeze_weights=True (outputs then "
            "ignore later weight changes), or use engine='backend', 'xla' or 'segments', which "
            "read the model's variables on every call."
        )
    if engine_cache is not None and engine != "auto":
        raise ValueError(
            f"`engine_cache` remembers the choices of engine='auto'; engine={engine!r} chooses "
            "nothing. Drop engine_cache or use engine='auto'."
        )
    if threads is not None and (
        isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral) or threads < 1
    ):
        raise ValueError(f"`threads` must be a positive int or None, got {threads!r}.")


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


def tensorflow_path(strategy: str, shape: Any, precision: str = "float32") -> str:
    """The compiled TensorFlow path that runs an NHWC batch of `shape`: "xla", "segments" or
    "segments_large" (attention in query pieces, above `ATTENTION_PIECES_MIN_IMAGE_PIXELS`)."""
    if resolve_strategy(strategy, shape, precision) == "xla":
        return "xla"
    if strategy != "plain" and _pixels(shape) > ATTENTION_PIECES_MIN_IMAGE_PIXELS:
        return "segments_large"
    return "segments"


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
