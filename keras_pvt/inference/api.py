"""`compile_inference`: a model compiled for inference, on the fastest engine by default."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import keras

from keras_pvt.inference.checks import check_backend, check_engine, check_model, image_checker
from keras_pvt.inference.engines import default_engine, translate_old_spellings


def compile_inference(
    model: keras.Model,
    precision: str = "float32",
    strategy: str | None = None,
    freeze_weights: bool | None = None,
    *,
    engine: str | None = None,
    threads: int | None = None,
    engine_cache: str | os.PathLike | None = None,
) -> Callable[[Any], Any]:
    """A compiled callable from an NHWC image batch to `model`'s outputs (inference mode).

    ``compile_inference(model)`` runs the fastest engine installed for the backend (the rule and its
    measurement: `keras_pvt.inference.engines`, docs/performance.md); outputs equal
    ``model(images, training=False)`` to float32 round-off on every engine.

    Args:
        model: a keras-pvt model (any head, `features_only` included) or any Keras model whose
            input is a 4-D NHWC batch.
        precision: "float32", or on TensorFlow "bfloat16" (engine "plain", under the
            ``mixed_bfloat16`` policy; float32 outputs, bfloat16 accuracy; AMX CPUs).
        strategy: deprecated, the old spelling of `engine` ("auto" is the backend's compiler).
        freeze_weights: True runs a snapshot of the weights taken now (later changes to `model`
            are ignored); False reads the model's variables on every call. None (the default):
            the engine's own way: a snapshot on "litert", "openvino" and "measure" (and so on the
            default engine where that is one of them), the live variables on "xla" and "plain".
            ``freeze_weights=False`` with no engine picks the backend's compiler.
        engine: who runs the model. None (the default): the fastest installed for this backend.
            "xla": the backend's XLA compiler (TensorFlow ``jit_compile``, `jax.jit`), with the
            depthwise convs rewritten as shifted multiply-adds (`keras_pvt.rewrites.XLA`).
            "plain": the backend's runtime as it is (a `tf.function`, `jax.jit`, PyTorch without
            autograd). On TensorFlow also "litert" (a float32 `.tflite` per input shape, run by
            LiteRT/XNNPACK), "openvino" (an OpenVINO model per input shape, on the CPU;
            ``pip install 'keras-pvt[openvino]'``) and "measure" (each new input shape built on
            every installed engine, checked, timed; the fastest kept). Old spellings ("backend",
            "segments", "auto") still run, with a DeprecationWarning.
        threads: LiteRT and OpenVINO threads (also inside "measure"); None = the CPUs this process
            may use. Refused for "xla" and "plain" (the backend's own thread pools).
        engine_cache: with ``engine="measure"``, a JSON file remembering the choice per input
            shape, machine, model and threads across processes (created if missing; a file
            keras-pvt did not write is never replaced: `OutputRefusedError`, raised now).

    The callable accepts NumPy arrays or tensors of any batch size and image size (float32) and
    returns float32 tensors of the backend (a dict for `features_only` models; TensorFlow tensors
    from "litert" and "openvino"). Each new input shape costs one compilation on "xla", one
    conversion on "litert" and "openvino". Before running it refuses, with one `ValueError` naming
    the shape and dtype: a rank or channel count the model cannot take, images below the model's
    minimum size, and integer images when the model has no preprocessing inside (call
    `keras_pvt.preprocess_input` first).
    """
    backend = check_backend(precision)
    engine = translate_old_spellings(engine, strategy, backend)
    chosen = engine is None
    if chosen:
        engine = default_engine(backend, precision, freeze_weights)
    check_engine(engine, backend, precision, freeze_weights, threads, engine_cache)
    check_model(model)
    checked_images = image_checker(model)
    if engine in ("litert", "openvino", "measure"):
        from keras_pvt.engines.compiled import compile_engine

        threads = None if threads is None else int(threads)
        try:
            return compile_engine(model, engine, checked_images, threads=threads, engine_cache=engine_cache)
        except ValueError as error:
            if not chosen:
                raise
            warnings.warn(f"{error} Running engine='xla' instead.", RuntimeWarning, stacklevel=2)
            engine = "xla"
    if backend == "jax":
        from keras_pvt.inference.jax_compile import compile_jax

        return compile_jax(model, engine, bool(freeze_weights), checked_images)
    if backend == "torch":
        from keras_pvt.inference.torch_compile import compile_torch

        return compile_torch(model, bool(freeze_weights), checked_images)
    from keras_pvt.inference.tf_compile import compile_tensorflow

    return compile_tensorflow(model, engine, precision, bool(freeze_weights), checked_images)
