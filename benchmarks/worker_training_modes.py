"""Benchmark worker: one keras-pvt training step (AdamW, `train_on_batch`) in one of several modes.

Task keys: "variant", "mode" and optional "source" (the folder keras_pvt is imported from; default
this checkout). Modes: "user" (the model built and compiled as a user does, ``jit_compile=False``,
nothing else: on TensorFlow the builder applies the training rewrite itself, at an old revision
its layers did whatever they did); "rewrite" (the same after an explicit
`keras_pvt.rewrites.training.rewrite_for_training`, as `train()` calls it); "xla" (the
depthwise convs shifted, `keras_pvt.rewrites.XLA`, and the whole step compiled, ``jit_compile=True``).
Run params "batch", "size". See `worker_protocol.py`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import worker_protocol  # noqa: E402


def main() -> None:
    task = json.loads(sys.argv[1])
    source = Path(task.get("source", HERE.parent)).resolve()
    sys.path.insert(0, str(source))
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_pvt
    from keras_pvt import PVT_V2

    if not Path(keras_pvt.__file__).resolve().is_relative_to(source):
        raise RuntimeError(f"keras_pvt came from {keras_pvt.__file__}, not from {source}")
    versions = {"keras_pvt": keras_pvt.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = PVT_V2(task["variant"], drop_path_rate=0.1)
    mode = task["mode"]
    if mode == "rewrite":
        from keras_pvt.rewrites.training import rewrite_for_training

        rewrite_for_training(model)
    elif mode == "xla":
        from keras_pvt.rewrites import XLA, swap_in_place

        swap_in_place(model, XLA)
    elif mode != "user":
        raise worker_protocol.ContestantUnavailableError(f"no mode {mode!r}")
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
        loss="sparse_categorical_crossentropy",
        jit_compile=mode == "xla",
    )

    def prepare(params: dict[str, Any]):
        size, batch = params.get("size", 224), params["batch"]
        images = rng.normal(size=(batch, size, size, 3)).astype("float32")
        labels = rng.integers(0, 1000, size=(batch,))
        return lambda: model.train_on_batch(images, labels)

    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
