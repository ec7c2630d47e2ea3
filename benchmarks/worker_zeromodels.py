"""Benchmark worker for zeromodels' PVT-v2, a Keras 3 port (run with the `zm` peer venv, TensorFlow
backend). See `worker_protocol.py`.

Tasks (task keys "task", "variant"):
  "infer":  a `tf.function` of `PvtV2ImageClassify` (built for one input size, so each run size gets
            its own model, as kecam's); run params "batch", "size".
  "tflite": the file zeromodels' users make, `model.export(path, format="litert")` (float32, its
            input fixed at 224x224 with a dynamic batch: one file per variant, its input resized to
            the run's "batch"), timed on LiteRT at the run's "threads" (else the task's "threads");
            task key "cache" (folder for the file and the weights it was made from). Facts: the
            file's size and its outputs vs the Keras model's (`compare_outputs`).
Random weights (seed 0). The tflite task saves them beside the file (or loads them from there), so a
file made by an earlier process is always compared with the model it came from. Outputs are logits
(zeromodels' classifier has no activation).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import worker_protocol  # noqa: E402
from tf_common import TFLITE_SIZE, shared_weights, tflite_task, version  # noqa: E402

WIDE = (64, 128, 320, 512)
ARCHITECTURES = {  # timm's pvt_v2_<variant>; heads, MLP and reduction ratios are zeromodels' defaults
    "b0": {"hidden_sizes": (32, 64, 160, 256), "depths": (2, 2, 2, 2)},
    "b1": {"hidden_sizes": WIDE, "depths": (2, 2, 2, 2)},
    "b2": {"hidden_sizes": WIDE, "depths": (3, 4, 6, 3)},
    "b2_li": {"hidden_sizes": WIDE, "depths": (3, 4, 6, 3), "linear_attention": True},
}


def build(variant: str, size: int) -> Any:
    """zeromodels' classifier for `variant` at `size` x `size`, random weights (seed 0)."""
    import keras
    from zeromodels.models.pvt_v2 import PvtV2ImageClassify

    if variant not in ARCHITECTURES:
        raise worker_protocol.ContestantUnavailableError(f"no zeromodels PVT-v2 {variant!r} mapped here")
    keras.utils.set_random_seed(0)
    return PvtV2ImageClassify(**ARCHITECTURES[variant], image_size=size)


def litert_writer(model: Any):
    """`write(path, batch)` for `tflite_task`: zeromodels' own LiteRT export (dynamic batch)."""

    def write(path: Path, batch: int) -> None:
        partial = path.with_name(f".{os.getpid()}.partial.{path.name}")
        model.export(str(partial), format="litert")
        os.replace(partial, path)

    return write


def main() -> None:
    task = json.loads(sys.argv[1])
    import keras
    import numpy as np
    import tensorflow as tf

    versions = {
        "zeromodels": version("zeromodels"),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
    }
    rng = np.random.default_rng(0)
    kind, variant = task["task"], task["variant"]

    if kind == "infer":
        models: dict[int, Any] = {}

        def prepare(params: dict[str, Any]):
            size = params.get("size", 224)
            if size not in models:
                models[size] = build(variant, size)
            model = models[size]
            predict = tf.function(lambda images: model(images, training=False))
            images = tf.constant(rng.normal(size=(params["batch"], size, size, 3)), tf.float32)
            return lambda: predict(images).numpy()

    elif kind == "tflite":
        if task.get("quant", "float32") != "float32":
            raise worker_protocol.ContestantUnavailableError("zeromodels' LiteRT export is float32 only")
        model = build(variant, TFLITE_SIZE)
        shared_weights(model, Path(task["cache"]) / f"zeromodels_{variant}.weights.h5")

        def reference(images: Any) -> Any:
            return keras.ops.convert_to_numpy(model(images, training=False))

        task = {**task, "quant": "float32"}
        prepare = tflite_task(
            task, "zeromodels", litert_writer(model), rng, versions, reference, per_batch=False
        )

    else:
        raise ValueError(f"unknown task {kind!r}")
    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
