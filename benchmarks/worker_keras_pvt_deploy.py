"""Benchmark worker for keras-pvt as deployed on a CPU (the project's venv). See `worker_protocol.py`.

Task keys: "task" ("deploy"), "variant", "cache" (folder for exported files), "threads" (default 2)
and "runtime":
  "engine":      `compile_inference(model)` for engine "default", else
                 `compile_inference(model, engine=task["engine"])` ("xla", "litert", "openvino",
                 the last two with `threads=`); facts give the first call's seconds (conversion
                 included);
  "tflite":      our float32 `.tflite` (`keras_pvt.export.convert_to_tflite`, fixed shape, the run's
                 batch) on LiteRT;
  "openvino_ir": our OpenVINO IR (`keras_pvt.export.openvino`, fixed shape, the run's batch) on
                 OpenVINO, "precision" "f32" or "bf16" (INFERENCE_PRECISION_HINT), run exactly as
                 timm's ONNX graph is (`openvino_runner`).
The model outputs logits, as timm's does; its weights are the task's "weights" (timm's state dict,
`timm_weights.py`) where given, else random (seed 0). A runtime or engine the installed keras_pvt
lacks is reported as skipped. Run params "batch", "size"; each run's facts compare the outputs with
`model(images, training=False)`, and the Keras model's with timm's on the same weights ("vs_timm",
where the task names "timm_reference").
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import worker_protocol  # noqa: E402
from openvino_runner import openvino_runner  # noqa: E402
from output_check import compare_outputs  # noqa: E402
from tf_common import (  # noqa: E402
    TFLITE_SIZE,
    agreement_with_timm,
    keras_pvt_tflite,
    tflite_task,
    version,
)

RUNTIMES = ("engine", "tflite", "openvino_ir")
Unavailable = worker_protocol.ContestantUnavailableError


# The engines that run a converted file with their own thread pool (TensorFlow's engines use its pools).
THREADED_ENGINES = ("litert", "openvino")


def engine_predict(model: Any, engine: str, threads: int):
    """`compile_inference(model)` for "default" (what a user gets with no other argument), else
    `compile_inference(model, engine=engine)` with `threads` where the engine takes them;
    unavailable without `engine=` or where the engine is refused."""
    from keras_pvt import compile_inference

    if engine == "default":
        return compile_inference(model)
    accepted = inspect.signature(compile_inference).parameters
    if "engine" not in accepted:
        raise Unavailable("compile_inference has no engine= argument in this keras_pvt")
    extra = {"threads": threads} if engine in THREADED_ENGINES and "threads" in accepted else {}
    try:
        return compile_inference(model, engine=engine, **extra)
    except (ValueError, ImportError) as error:  # an engine this keras_pvt or machine does not offer
        raise Unavailable(f"compile_inference(engine={engine!r}) refused: {error}") from error


def openvino_exporter():
    """The IR export function of `keras_pvt.export.openvino`; unavailable where it is missing."""
    try:
        from keras_pvt.export import openvino as module
    except ImportError as error:
        raise Unavailable(f"keras_pvt.export.openvino cannot be imported: {error}") from error
    for name in ("export_openvino", "convert_to_openvino"):
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise Unavailable("keras_pvt.export.openvino has no export_openvino / convert_to_openvino")


def export_ir(export: Any, model: Any, path: Path, batch: int) -> Path:
    """Our float32 IR at `path` (.xml beside its .bin), fixed at `batch` x 224 x 224, unverified."""
    wanted = {"image_size": TFLITE_SIZE, "batch_size": batch, "verify": False, "precision": "float32"}
    accepted = inspect.signature(export).parameters
    result = export(model, path, **{k: v for k, v in wanted.items() if k in accepted})
    return Path(getattr(result, "path", path))


def main() -> None:
    task = json.loads(sys.argv[1])
    if task.get("task") != "deploy" or task.get("runtime") not in RUNTIMES:
        raise ValueError(f"this worker times deployment runtimes {RUNTIMES}, got {task}")
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_pvt
    from keras_pvt import PVT_V2

    versions = {"keras_pvt": keras_pvt.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    for distribution in ("openvino", "ai-edge-litert"):
        with contextlib.suppress(ImportError):  # PackageNotFoundError is an ImportError
            versions[distribution.replace("-", "_")] = version(distribution)
    rng = np.random.default_rng(0)
    runtime, threads = task["runtime"], int(task.get("threads", 2))
    keras.utils.set_random_seed(0)
    model = PVT_V2(task["variant"], weights=task.get("weights"), classifier_activation=None)  # logits
    vs_timm = agreement_with_timm(model, task)

    def reference(images: Any) -> Any:
        return keras.ops.convert_to_numpy(model(images, training=False))

    if runtime == "tflite":
        write = keras_pvt_tflite(model, "float32", rng)
        origin = "shared" if task.get("weights") else "seed0"  # the "tflite" group's file too
        prepare = tflite_task(
            {**task, "quant": "float32"},
            f"keras_pvt_{origin}",
            write,
            rng,
            versions,
            reference,
            extra_facts=vs_timm,
        )
        worker_protocol.serve(prepare, versions)
        return
    if runtime == "engine":
        predict = engine_predict(model, task["engine"], threads)

        def prepare_shape(images: Any) -> tuple[Any, dict[str, Any]]:
            def step() -> Any:
                return keras.ops.convert_to_numpy(predict(images))

            started = time.perf_counter()
            step()  # builds the engine for this shape (the conversion, for litert and openvino)
            facts = {"first_call_s": round(time.perf_counter() - started, 2)}
            chosen = getattr(predict, "chosen", {}).get(tuple(images.shape))
            return step, ({**facts, "engine_chosen": chosen} if chosen else facts)

    else:
        export = openvino_exporter()

        def prepare_shape(images: Any) -> tuple[Any, dict[str, Any]]:
            path = Path(task["cache"]) / f"keras_pvt_{task['variant']}_batch{len(images)}.xml"
            if not path.exists():
                path = export_ir(export, model, path, len(images))
            runner = openvino_runner(path, threads, task.get("precision", "f32"), versions)
            return runner(images)

    def prepare(params: dict[str, Any]):
        size = params.get("size", 224)
        images = rng.normal(size=(params["batch"], size, size, 3)).astype("float32")
        step, facts = prepare_shape(images)
        return step, {**facts, **vs_timm, **compare_outputs(step(), reference(images))}

    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
