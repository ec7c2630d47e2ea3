"""Benchmark worker for keras-pvt on Keras' JAX or PyTorch backend (the project's venv). See
`worker_protocol.py`.

Task keys: "task" ("infer"), "variant", "backend" ("jax" or "torch", set as KERAS_BACKEND before
Keras is imported) and "mode": "compiled" (`compile_inference(model)`: on JAX `jax.jit` of the
stateless call with shifted depthwise convs, on PyTorch the call under `torch.no_grad`) or "plain"
(on JAX `compile_inference(model, strategy="plain")`, `jax.jit` with XLA's own depthwise conv; on
PyTorch the model called as is, autograd recording). Run params "batch", "size". Each step fetches
the result to NumPy (JAX dispatches asynchronously).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worker_protocol  # noqa: E402

BACKENDS = ("jax", "torch")


def main() -> None:
    task = json.loads(sys.argv[1])
    if task.get("backend") not in BACKENDS or task.get("task") != "infer":
        raise ValueError(f"this worker times inference on {BACKENDS}, got {task}")
    os.environ["KERAS_BACKEND"] = task["backend"]
    sys.path.insert(0, str(Path(task.get("source", HERE.parent)).resolve()))
    import importlib

    import keras
    import numpy as np

    import keras_pvt
    from keras_pvt import PVT_V2, compile_inference

    framework = importlib.import_module(task["backend"])
    versions = {
        "keras_pvt": keras_pvt.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        task["backend"]: framework.__version__,
        "numpy": np.__version__,
    }
    rng = np.random.default_rng(0)
    model = PVT_V2(task["variant"])
    if task["mode"] == "compiled":
        predict = compile_inference(model)
    elif task["mode"] == "plain" and task["backend"] == "jax":
        predict = compile_inference(model, strategy="plain")
    elif task["mode"] == "plain":

        def predict(images: Any) -> Any:
            return model(images, training=False)

    else:
        raise ValueError(f"unknown mode {task['mode']!r}")

    def prepare(params: dict[str, Any]):
        size = params.get("size", 224)
        images = keras.ops.convert_to_tensor(rng.normal(size=(params["batch"], size, size, 3)), "float32")

        def step() -> Any:
            outputs = predict(images)
            if task["backend"] == "torch":
                outputs = outputs.detach()
            return keras.ops.convert_to_numpy(outputs)

        return step

    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    main()
