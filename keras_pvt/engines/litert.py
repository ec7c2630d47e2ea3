"""The "litert" engine: a float32 `.tflite` converted for each input shape, run by LiteRT (XNNPACK).

Each new shape is converted once with `keras_pvt.export.convert_to_tflite` (quantize="none", fixed
batch and size, no verification: the tests check the engine against the model) into a private
temporary folder, read into memory and the folder removed; the interpreter runs that flatbuffer
with XNNPACK, LiteRT's default CPU delegate. A LiteRT interpreter is not thread-safe: each shape's
interpreter is guarded by a lock, so concurrent calls of one shape run one after another (for
parallel serving, compile one callable per thread).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_pvt.engines.outputs import OutputStructure
from keras_pvt.export.signature import INPUT_NAME, SIGNATURE_KEY


def interpreter_class() -> Any:
    """LiteRT's `Interpreter`, or an ImportError saying how to install it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError(
            "engine='litert' needs the LiteRT interpreter: pip install 'keras-pvt[export]' "
            "(package ai-edge-litert)."
        ) from error
    return Interpreter


def tflite_flatbuffer(model: keras.Model, shape: tuple[int, ...]) -> bytes:
    """`model` converted to a float32 `.tflite` for NHWC batches of exactly `shape`, in memory."""
    from keras_pvt.export.tflite import convert_to_tflite

    batch, height, width = shape[:3]
    with tempfile.TemporaryDirectory(prefix="keras-pvt-litert-") as folder:
        path = Path(folder) / "model.tflite"
        convert_to_tflite(
            model, path, quantize="none", image_size=(height, width), batch_size=batch, verify=False
        )
        return path.read_bytes()


class LiteRTRunner:
    """One shape's interpreter: images in, the model's output structure out; calls take a lock."""

    def __init__(self, flatbuffer: bytes, threads: int, outputs: OutputStructure) -> None:
        self.interpreter = interpreter_class()(model_content=flatbuffer, num_threads=threads)
        self._signature = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        self._outputs = outputs
        self._lock = threading.Lock()

    def __call__(self, images: Any) -> Any:
        images = np.asarray(images, np.float32)
        with self._lock:
            named = self._signature(**{INPUT_NAME: images})  # arrays copied out of the interpreter
        return self._outputs(named)


class LiteRTEngine:
    """Builds a `LiteRTRunner` per input shape from `model` (a frozen copy); counts conversions."""

    name = "litert"

    def __init__(self, model: keras.Model, threads: int) -> None:
        interpreter_class()  # fail now, not on the first call, when LiteRT is missing
        self.model, self.threads = model, threads
        self.outputs = OutputStructure(model)
        self.conversions = 0

    def build(self, shape: tuple[int, ...]) -> LiteRTRunner:
        flatbuffer = tflite_flatbuffer(self.model, shape)
        self.conversions += 1
        return LiteRTRunner(flatbuffer, self.threads, self.outputs)
