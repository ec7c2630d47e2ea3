"""LiteRT and TensorFlow helpers shared by the TFLite workers (keras-pvt, keras-cv-attention-models,
zeromodels, litert-torch; only `tflite_task` runs without TensorFlow).

keras-pvt is converted by the product's own `keras_pvt.export.convert_to_tflite` (what users get);
kecam, a tf-keras model, by the plain TensorFlow route below. Both are fixed-shape (224, the batch
of the run, 1 unless given) and calibrated for int8 on the same random images. "int8" is our
default int8 export (mixed int8; kecam's is every op integer), "int8-full" our every-op-integer
mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from output_check import compare_outputs

TFLITE_SIZE = 224
CALIBRATION_IMAGES = 8
INT8_MODES = ("int8", "int8-full")


def calibration_images(rng: Any) -> Any:
    """Standard-normal stand-ins for preprocessed photos, (8, 224, 224, 3) float32."""
    return rng.normal(size=(CALIBRATION_IMAGES, TFLITE_SIZE, TFLITE_SIZE, 3)).astype("float32")


def keras_pvt_tflite(model: Any, quant: str, rng: Any) -> Callable[[Path, int], None]:
    """Writes `model` as TFLite with `keras_pvt.export.convert_to_tflite`, unverified."""
    from keras_pvt.export import convert_to_tflite

    def write(path: Path, batch: int = 1) -> None:
        convert_to_tflite(
            model,
            path,
            quantize="none" if quant == "float32" else quant,
            representative_data=calibration_images(rng) if quant in INT8_MODES else None,
            num_calibration=CALIBRATION_IMAGES,
            image_size=TFLITE_SIZE,
            batch_size=batch,
            verify=False,
        )

    return write


def plain_tflite(model: Any, quant: str, rng: Any) -> Callable[[Path, int], None]:
    """Writes a tf-keras `model` as TFLite, builtin ops only, weights frozen into constants."""

    def write(path: Path, batch: int = 1) -> None:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        spec = tf.TensorSpec((batch, TFLITE_SIZE, TFLITE_SIZE, 3), tf.float32)
        function = tf.function(lambda images: model(images, training=False))
        # Weights frozen into constants: the int8 calibrator cannot read resource variables.
        frozen = convert_variables_to_constants_v2(function.get_concrete_function(spec))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quant == "int8":
            images = calibration_images(rng)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[None]] for image in images)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        path.write_bytes(converter.convert())

    return write


def tflite_task(
    task: dict[str, Any],
    prefix: str,
    write: Callable[[Path, int], None],
    rng: Any,
    versions: dict[str, str],
    reference: Callable[[Any], Any] | None = None,
    *,
    per_batch: bool = True,
    extra_facts: dict[str, Any] | None = None,
):
    """The `prepare` of a "tflite" task: `write(path, batch)` once per batch (cached by path; with
    `per_batch=False` one file, written at batch 1, whose input is resized to the run's batch where
    its batch dimension is dynamic, else the run is unavailable), then times LiteRT at the run's
    "threads" (else the task's, else 2) on a batch of the run's "batch" (else 1). Facts: the file's
    size, `extra_facts` and, given `reference` (images -> float32 outputs), how far the file's
    outputs are from it (`compare_outputs`)."""
    from ai_edge_litert.interpreter import Interpreter

    versions["ai_edge_litert"] = version("ai-edge-litert")

    def prepare(params: dict[str, Any]):
        batch = params.get("batch", 1)
        suffix = "" if batch == 1 or not per_batch else f"_batch{batch}"
        path = Path(task["cache"]) / f"{prefix}_{task['variant']}_{task['quant']}{suffix}.tflite"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, batch if per_batch else 1)
        threads = params.get("threads", task.get("threads", 2))
        step, images = tflite_step(Interpreter, path, threads, rng, batch)
        facts: dict[str, Any] = {"file_bytes": path.stat().st_size, **(extra_facts or {})}
        if reference is not None and images.dtype.kind == "f":  # int8 inputs: not comparable
            facts.update(compare_outputs(step(), reference(images)))
        return step, facts

    return prepare


def tflite_step(
    interpreter_class: Any, path: Path, threads: int, rng: Any, batch: int | None = None
) -> tuple[Callable[[], Any], Any]:
    """One LiteRT invoke on random images (a step) and those images; `batch` resizes the input of
    a file whose batch dimension is dynamic (ContestantUnavailableError for a file fixed at
    another batch)."""
    from worker_protocol import ContestantUnavailableError

    interpreter = interpreter_class(model_path=str(path), num_threads=threads)
    detail = interpreter.get_input_details()[0]
    shape = [int(n) for n in detail["shape"]]
    if batch is not None and batch != shape[0]:
        if int(detail["shape_signature"][0]) != -1:
            raise ContestantUnavailableError(f"its file is fixed at batch {shape[0]}")
        shape[0] = batch
        interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]
    images = rng.normal(size=shape).astype(detail["dtype"])

    def step():
        interpreter.set_tensor(detail["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return step, images


def shared_weights(model: Any, path: Path) -> None:
    """Give `model` the weights saved at `path`, saving its own there first where no process has:
    every process of a peer then holds the same weights, so a file one of them converted is always
    compared with the model it came from. The first save wins (linked into place atomically)."""
    import os

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{os.getpid()}.partial.{path.name}")
        model.save_weights(str(partial))
        try:
            os.link(partial, path)  # fails where another process saved first: theirs are kept
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    model.load_weights(str(path))


def agreement_with_timm(model: Any, task: dict[str, Any]) -> dict[str, Any]:
    """How far `model`'s outputs are from timm's on the same weights and images, as facts
    ({"vs_timm": `compare_outputs`}), where the task names timm's reference outputs
    ("timm_reference", from `timm_weights.py`); else no facts."""
    if not task.get("timm_reference"):
        return {}
    import keras
    import numpy as np

    with np.load(task["timm_reference"]) as reference:
        images, logits = reference["images"], reference["logits"]
    outputs = keras.ops.convert_to_numpy(model(images, training=False))
    return {"vs_timm": compare_outputs(outputs, logits)}


def version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)
