"""TensorFlow helpers shared by the keras-pvt and keras-cv-attention-models workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TFLITE_SIZE = 224


def convert_tflite(model: Any, quant: str, rng: Any) -> bytes:
    """Fixed-shape (1, 224, 224, 3) TFLite flatbuffer, builtin ops only."""
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
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.normal(size=(1, TFLITE_SIZE, TFLITE_SIZE, 3)).astype("float32")] for _ in range(8)
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter.convert()


def cached_tflite(path: Path, build_model: Any, quant: str, rng: Any) -> Path:
    """`path`, converting `build_model()` to TFLite there first if no earlier run left it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(convert_tflite(build_model(), quant, rng))
    return path


def tflite_task(task: dict[str, Any], prefix: str, build_model: Any, rng: Any, versions: dict[str, str]):
    """The `prepare` of a "tflite" task: converts `build_model()` once (cached), then times LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    cache = Path(task["cache"]) / f"{prefix}_{task['variant']}_{task['quant']}.tflite"
    path = cached_tflite(cache, build_model, task["quant"], rng)
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
