"""The "openvino" engine: an OpenVINO model converted for each input shape, compiled for the CPU.

Each new shape is converted once with `keras_pvt.export.openvino.convert_to_openvino_model` (fixed
batch and size, on the export's rewrite, applied once) and compiled with float32 inference precision and the
given number of threads. A compiled OpenVINO model is thread-safe, an infer request is not: each
call takes an idle request from the shape's pool (creating one when all are busy, so concurrent
calls run in parallel, each request holding its own activation buffers) and returns it after
copying the outputs out.
"""

from __future__ import annotations

import queue
from typing import Any

import keras
import numpy as np

from keras_pvt._requires import require_openvino
from keras_pvt.engines.outputs import OutputStructure
from keras_pvt.export.kernel_choice import openvino_kernel_table
from keras_pvt.rewrites import rewritten

OPENVINO_DEVICE = "CPU"


def openvino_module() -> Any:
    """The `openvino` package, or `OpenVINORequiredError` (an ImportError) saying how to install it."""
    require_openvino("engine='openvino'")
    import openvino

    return openvino


def output_order(compiled: Any, names: list[str]) -> list[str]:
    """The Keras output name of each output of `compiled`, matched by tensor name (a lone output
    needs no name)."""
    ports = list(compiled.outputs)
    if len(ports) == 1 and len(names) == 1:
        return names
    order = []
    for port in ports:
        tensor_names = {name.split(":")[0] for name in port.get_names()}
        matches = [name for name in names if name in tensor_names]
        if len(matches) != 1:
            raise RuntimeError(
                f"The OpenVINO model's output with tensor names {sorted(tensor_names)} does not "
                f"match exactly one of the Keras model's outputs {names}."
            )
        order.append(matches[0])
    if sorted(order) != sorted(names):
        raise RuntimeError(f"The OpenVINO model's outputs {order} are not the Keras model's {names}.")
    return order


class OpenVINORunner:
    """One shape's compiled model: images in, the model's output structure out, any thread."""

    def __init__(self, compiled: Any, outputs: OutputStructure) -> None:
        self.compiled = compiled
        self._order = output_order(compiled, outputs.names)
        self._outputs = outputs
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def __call__(self, images: Any) -> Any:
        images = np.asarray(images, np.float32)
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            result = request.infer({0: images})  # outputs copied (share_outputs=False)
            named = {name: result[index] for index, name in enumerate(self._order)}
        finally:
            self._idle.put(request)
        return self._outputs(named)


class OpenVINOEngine:
    """Builds an `OpenVINORunner` per input shape from `model` (a frozen copy); counts conversions."""

    name = "openvino"

    def __init__(self, model: keras.Model, threads: int) -> None:
        self._core = openvino_module().Core()
        from keras_pvt.export.openvino import convert_to_openvino_model

        self._convert = convert_to_openvino_model
        # Rewritten once here (not on each shape's conversion, which would find nothing left to rewrite).
        self.model, self.threads = rewritten(model, openvino_kernel_table()), threads
        self.outputs = OutputStructure(model)
        self.conversions = 0

    def build(self, shape: tuple[int, ...]) -> OpenVINORunner:
        batch, height, width = shape[:3]
        converted = self._convert(self.model, image_size=(height, width), batch_size=batch)
        config = {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32"}
        compiled = self._core.compile_model(converted, OPENVINO_DEVICE, config)
        self.conversions += 1
        return OpenVINORunner(compiled, self.outputs)
