"""TensorFlow helpers shared by the keras-pvt and keras-cv-attention-models workers.

keras-pvt is converted by the product's own `keras_pvt.export.convert_to_tflite` (what users get);
kecam, a tf-keras model, by the plain TensorFlow route below. Both are fixed-shape (batch 1, 224)
and calibrated for int8 on the same random images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TFLITE_SIZE = 224
CALIBRATION_IMAGES = 8


def calibration_images(rng: Any) -> Any:
    """Standard-normal stand-ins for preprocessed photos, (8, 224, 224, 3) float32."""
    return rng.normal(size=(CALIBRATION_IMAGES, TFLITE_SIZE, TFLITE_SIZE, 3)).astype("float32")


def keras_pvt_tflite(model: Any, quant: str, rng: Any) -> Callable[[Path], None]:
    """Writes `model` as TFLite with `keras_pvt.export.convert_to_tflite`, unverified."""
    from keras_pvt.export import convert_to_tflite

    def write(path: Path) -> None:
        convert_to_tflite(
            model,
            path,
            quantize="none" if quant == "float32" else quant,
            representative_data=calibration_images(rng) if quant == "int8" else None,
            num_calibration=CALIBRATION_IMAGES,
            image_size=TFLITE_SIZE,
            batch_size=1,
            verify=False,
        )

    return write


def plain_tflite(model: Any, quant: str, rng: Any) -> Callable[[Path], None]:
    """Writes a tf-keras `model` as TFLite, builtin ops only, weights frozen into constants."""

    def write(path: Path) -> None:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        spec = tf.TensorSpec((1, TFLITE_SIZE, TFLITE_SIZE, 3), tf.float32)
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
    task: dict[str, Any], prefix: str, write: Callable[[Path], None], rng: Any, versions: dict[str, str]
):
    """The `prepare` of a "tflite" task: `write(path)` once (cached by path), then times LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    path = Path(task["cache"]) / f"{prefix}_{task['variant']}_{task['quant']}.tflite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    versions["ai_edge_litert"] = version("ai-edge-litert")
    return lambda params: tflite_step(Interpreter, path, params["threads"], rng)


def tflite_step(interpreter_class: Any, path: Path, threads: int, rng: Any):
    interpreter = interpreter_class(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]["index"]
    images = rng.normal(size=detail["shape"]).astype(detail["dtype"])

    def step():
        interpreter.set_tensor(detail["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return step


def version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)
