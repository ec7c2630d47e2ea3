"""Benchmark worker for keras-cv-attention-models (run with the kecam peer venv, tf-keras).

Same tasks and params as `worker_keras_pvt.py`; "infer" has one mode, a `tf.function` of the model
(kecam builds fixed-size models, so each input size gets its own model); "tflite" converts a model
that outputs logits (as every .tflite row does), its random weights saved beside the files (or
loaded from there, so files made by another process match this one's model), also takes the run
param "batch" (a file per batch) and the task's "threads" (used when the run gives none).
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
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import worker_protocol  # noqa: E402
from tf_common import plain_tflite, shared_weights, tflite_task, version  # noqa: E402

BUILDERS = {"b0": "PVT_V2B0", "b1": "PVT_V2B1", "b2": "PVT_V2B2", "b2_li": "PVT_V2B2_linear"}


def main() -> None:
    task = json.loads(sys.argv[1])
    import numpy as np
    import tensorflow as tf
    from keras_cv_attention_models import pvt

    versions = {
        "keras_cv_attention_models": version("keras-cv-attention-models"),
        "tensorflow": tf.__version__,
        "tf_keras": version("tf-keras"),
        "numpy": np.__version__,
    }
    rng = np.random.default_rng(0)
    kind, variant = task["task"], task["variant"]
    builder = getattr(pvt, BUILDERS[variant])

    def build(size: int, **kwargs: Any) -> Any:
        return builder(input_shape=(size, size, 3), pretrained=None, **kwargs)

    if kind == "infer":

        def prepare(params: dict[str, Any]):
            size = params.get("size", 224)
            model = build(size)
            predict = tf.function(lambda images: model(images, training=False))
            images = tf.constant(rng.normal(size=(params["batch"], size, size, 3)), tf.float32)
            return lambda: predict(images).numpy()

    elif kind == "train":
        import tf_keras

        def prepare(params: dict[str, Any]):
            size, batch = params.get("size", 224), params["batch"]
            model = build(size, drop_connect_rate=0.1)
            model.compile(
                optimizer=tf_keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                loss="sparse_categorical_crossentropy",
                jit_compile=False,
            )
            images = rng.normal(size=(batch, size, size, 3)).astype("float32")
            labels = rng.integers(0, 1000, size=(batch,))
            return lambda: model.train_on_batch(images, labels)

    elif kind == "tflite":
        model = build(224, classifier_activation=None)
        shared_weights(model, Path(task["cache"]) / f"kecam_{variant}.weights.h5")

        def reference(images: Any) -> Any:
            return model(images, training=False).numpy()

        write = plain_tflite(model, task["quant"], rng)
        prepare = tflite_task(task, "kecam", write, rng, versions, reference)

    else:
        raise ValueError(f"unknown task {kind!r}")
    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    main()
