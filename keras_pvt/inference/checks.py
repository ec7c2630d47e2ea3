"""The argument and image checks of `compile_inference`, made before any work."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_pvt.images import takes_raw_pixels
from keras_pvt.inference.engines import BACKEND_ENGINES, ENGINES, SNAPSHOT_ENGINES
from keras_pvt.input_checks import check_image_batch
from keras_pvt.layers.size_check import model_min_image_size

PRECISIONS = ("float32", "bfloat16")


def check_backend(precision: str) -> str:
    """The Keras backend, once `precision` is known to run on it (else ValueError)."""
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}, got {precision!r}.")
    backend = keras.backend.backend()
    if backend not in BACKEND_ENGINES:
        raise ValueError(
            f"compile_inference runs on the TensorFlow, JAX and PyTorch backends, but Keras runs on "
            f"{backend!r}; set KERAS_BACKEND, or call the model directly."
        )
    if precision != "float32" and backend != "tensorflow":
        raise ValueError(
            f"`precision={precision!r}` needs the TensorFlow backend; on {backend!r} it must be 'float32'."
        )
    return backend


def check_engine(
    engine: str,
    backend: str,
    precision: str,
    freeze_weights: bool | None,
    threads: int | None,
    engine_cache: Any,
) -> None:
    """Refuse, before any work, an `engine` that cannot run with the other arguments."""
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES} (or None, the default), got {engine!r}.")
    if engine not in BACKEND_ENGINES[backend]:
        raise ValueError(
            f"`engine={engine!r}` needs the TensorFlow backend; on {backend!r} it must be one of "
            f"{BACKEND_ENGINES[backend]}."
        )
    if engine_cache is not None and engine != "measure":
        raise ValueError(
            f"`engine_cache` remembers the choices of engine='measure'; engine={engine!r} chooses "
            "nothing. Drop engine_cache or use engine='measure'."
        )
    if engine not in SNAPSHOT_ENGINES:
        if threads is not None:
            raise ValueError(
                f"`threads` applies to engine='litert', 'openvino' or 'measure'; engine={engine!r} "
                "runs on the backend's own thread pools (tf.config.threading on TensorFlow)."
            )
        if precision == "bfloat16" and engine != "plain":
            raise ValueError(
                f"`precision='bfloat16'` runs on engine='plain' (XLA's CPU dots do not use AMX), "
                f"got engine={engine!r}."
            )
        return
    if precision != "float32":
        raise ValueError(
            f"`engine={engine!r}` runs float32 files only, got precision={precision!r}; "
            "bfloat16 runs on engine='plain'."
        )
    if freeze_weights is False:
        raise ValueError(
            f"`engine={engine!r}` converts a snapshot of the weights for each input shape, so it "
            "would not follow later changes to the model: leave freeze_weights out (or True), or "
            "use engine='xla' or 'plain', which read the model's variables on every call."
        )
    if threads is not None and (
        isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral) or threads < 1
    ):
        raise ValueError(f"`threads` must be a positive int or None, got {threads!r}.")


def check_model(model: keras.Model) -> None:
    """ValueError unless `model` has one 4-D (NHWC) input."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError("compile_inference needs a model with one 4-D (NHWC) input.")


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
