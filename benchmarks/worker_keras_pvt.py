"""Benchmark worker for keras-pvt (run with the project's venv). See `worker_protocol.py`.

Task keys: "task" ("infer", "train", "tflite"), "variant", and
  infer: "mode" ("compiled": `compile_inference(model)`, "frozen": the same with
         `freeze_weights=True`, "bf16": its bfloat16 path, "segments" /
         "xla": its two strategies forced, "tf_function": a plain `tf.function` of the model);
         run params "batch", "size";
  train: run params "batch", "size" (AdamW step via `train_on_batch`, drop path 0.1);
  tflite: "quant" ("float32", "int8" (mixed int8) or "int8-full" (every op integer)), "cache"
         (folder for the .tflite file), optional "weights" (timm's state dict, `timm_weights.py`,
         else random init) and "timm_reference" (timm's outputs on those weights); run param
         "threads"; the model outputs logits, as timm's; converted by
         `keras_pvt.export.convert_to_tflite` (fixed shape, batch 1, unverified); a mode this
         keras_pvt lacks is reported as skipped. Facts: the file's size, its outputs vs Keras'
         and the Keras model's vs timm's ("vs_timm").
Optional "source": the folder keras_pvt is imported from (default: this checkout), so that
`run_all.py --baseline REV` can time an earlier revision with the same worker.
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

import worker_protocol  # noqa: E402
from tf_common import agreement_with_timm, keras_pvt_tflite, tflite_task  # noqa: E402


def main() -> None:
    task = json.loads(sys.argv[1])
    source = Path(task.get("source", HERE.parent)).resolve()
    sys.path.insert(0, str(source))
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_pvt
    from keras_pvt import PVT_V2, compile_inference

    if not Path(keras_pvt.__file__).resolve().is_relative_to(source):
        raise RuntimeError(f"keras_pvt came from {keras_pvt.__file__}, not from {source}")
    versions = {
        "keras_pvt": keras_pvt.__version__,
        "keras_pvt_source": str(source),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    rng = np.random.default_rng(0)
    kind, variant = task["task"], task["variant"]

    if kind == "infer":
        model = PVT_V2(variant)
        if task["mode"] == "compiled":
            predict = compile_inference(model)
        elif task["mode"] == "frozen":
            predict = compile_inference(model, freeze_weights=True)
        elif task["mode"] == "bf16":
            predict = compile_inference(model, precision="bfloat16")
        elif task["mode"] in ("segments", "xla"):
            predict = compile_inference(model, strategy=task["mode"])
        else:
            predict = tf.function(lambda images: model(images, training=False))

        def prepare(params: dict[str, Any]):
            size = params.get("size", 224)
            images = tf.constant(rng.normal(size=(params["batch"], size, size, 3)), tf.float32)
            return lambda: predict(images).numpy()

    elif kind == "train":
        model = PVT_V2(variant, drop_path_rate=0.1)
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
            loss="sparse_categorical_crossentropy",
            jit_compile=False,
        )

        def prepare(params: dict[str, Any]):
            size, batch = params.get("size", 224), params["batch"]
            images = rng.normal(size=(batch, size, size, 3)).astype("float32")
            labels = rng.integers(0, 1000, size=(batch,))
            return lambda: model.train_on_batch(images, labels)

    elif kind == "tflite":
        from keras_pvt.export import QUANTIZE_MODES

        if task["quant"] not in ("float32", *QUANTIZE_MODES):
            raise worker_protocol.ContestantUnavailableError(
                f"convert_to_tflite has no quantize={task['quant']!r} in this keras_pvt"
            )
        keras.utils.set_random_seed(0)
        model = PVT_V2(variant, weights=task.get("weights"), classifier_activation=None)  # logits

        def reference(images: Any) -> Any:
            return keras.ops.convert_to_numpy(model(images, training=False))

        write = keras_pvt_tflite(model, task["quant"], rng)
        origin = "shared" if task.get("weights") else "seed0"  # the "deploy" group's file too
        prefix = "keras_pvt_baseline" if "source" in task else f"keras_pvt_{origin}"
        prepare = tflite_task(
            task, prefix, write, rng, versions, reference, extra_facts=agreement_with_timm(model, task)
        )

    else:
        raise ValueError(f"unknown task {kind!r}")
    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
