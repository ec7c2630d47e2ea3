"""Run an OpenVINO model or IR on the CPU next to the Keras model, and measure how far apart they are.

The comparison, tolerance and latency machinery is `keras_pvt.export.verify`'s, shared with the
SavedModel and TFLite checks. OpenVINO's CPU plugin computes in bfloat16 by default on CPUs that
have it (AVX512-BF16, AMX): every compile here names its inference precision explicitly.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np

from keras_pvt._requires import require_openvino
from keras_pvt.export.bounds import resolve_bounds
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
from keras_pvt.export.errors import ExportError
from keras_pvt.export.verify import (
    DEFAULT_RUNS,
    VerificationReport,
    _comparison,
    _keras_outputs,
    bound_fields,
    judge,
    median_ms,
)
from keras_pvt.input_checks import check_image_size

DEVICE = "CPU"
# Inference precision name -> OpenVINO's INFERENCE_PRECISION_HINT.
INFERENCE_PRECISIONS = {"float32": "f32", "bfloat16": "bf16"}
# rt_info keys of the keras-pvt entry an exported IR carries (`keras_pvt.export.openvino`).
MIN_IMAGE_SIZE_KEY = ("keras_pvt", "min_image_size")


def compile_openvino(model: Any, threads: int | None = None, inference_precision: str = "float32") -> Any:
    """`model` (an `openvino.Model` or an IR `.xml` path) compiled for the CPU, latency-tuned.

    `inference_precision`: "float32" or "bfloat16" (needs a CPU with BF16 support).
    """
    require_openvino("Running an OpenVINO model")
    import openvino

    if inference_precision not in INFERENCE_PRECISIONS:
        raise ValueError(
            f"Unknown OpenVINO inference precision {inference_precision!r}; choose one of "
            f"{', '.join(INFERENCE_PRECISIONS)}."
        )
    core = openvino.Core()
    if inference_precision == "bfloat16" and "BF16" not in core.get_property(
        DEVICE, "OPTIMIZATION_CAPABILITIES"
    ):
        raise ExportError(
            "This CPU has no bfloat16 support in OpenVINO (needs AVX512-BF16 or AMX); "
            "use precision 'float32' or 'float16'."
        )
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[inference_precision],
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(os.fspath(model) if isinstance(model, os.PathLike) else model, DEVICE, config)


def runtime_op_counts(compiled: Any) -> dict[str, int]:
    """What the CPU plugin executes: ``{layer type: count}`` of the compiled graph, most first."""
    ops = compiled.get_runtime_model().get_ordered_ops()
    counts = collections.Counter(str(op.get_rt_info()["layerType"].astype(str)) for op in ops)
    return dict(counts.most_common())


def model_op_counts(model: Any) -> dict[str, int]:
    """``{op type: count}`` of an `openvino.Model` (after conversion's fusions, before the plugin's)."""
    return dict(collections.Counter(op.get_type_name() for op in model.get_ordered_ops()).most_common())


class OpenVINORunner:
    """Named outputs of a compiled OpenVINO model; a fixed batch is fed in chunks, sizes checked."""

    def __init__(self, model: Any, threads: int | None = None, inference_precision: str = "float32") -> None:
        require_openvino("Running an OpenVINO model")
        import openvino

        if not isinstance(model, openvino.Model):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"OpenVINO IR {path!r} does not exist.")
            model = openvino.Core().read_model(path)
        self.min_image_size = _rt_int(model, MIN_IMAGE_SIZE_KEY)
        self.compiled = compile_openvino(model, threads, inference_precision)
        shape = self.compiled.inputs[0].get_partial_shape()
        self.input_shape: list[int | None] = [None if d.is_dynamic else d.get_length() for d in shape]
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self._request = self.compiled.create_infer_request()
        self.last_shape: list[int] = []

    def _check(self, shape: tuple[int, ...]) -> None:
        for dim, want, axis in zip(self.input_shape, shape, ("batch", "height", "width", "channels")):
            if dim is not None and dim != want:
                raise ValueError(
                    f"The OpenVINO model has fixed {axis} {dim} but the images have {want}; export "
                    "with dynamic shapes or pass images of the exported size."
                )
        if self.min_image_size is not None:
            check_image_size(shape[1], shape[2], self.min_image_size)

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._check(images.shape)
        self.last_shape = list(images.shape)
        result = self._request.infer({0: images})
        return {name: np.asarray(result[i], np.float32) for i, name in enumerate(self.output_names)}

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.ascontiguousarray(images, np.float32)
        batch = self.input_shape[0] or len(images)
        if len(images) % batch:
            raise ValueError(f"{len(images)} images do not split into the fixed batch {batch}.")
        chunks = [self._infer(images[i : i + batch]) for i in range(0, len(images), batch)]
        return {name: np.concatenate([c[name] for c in chunks]) for name in self.output_names}

    def latency_ms(self, image: np.ndarray, runs: int) -> float:
        """Median wall time of one inference on `image` (batch 1 unless the model fixes more)."""
        sample = np.repeat(np.asarray(image, np.float32)[None], self.input_shape[0] or 1, axis=0)
        self._check(sample.shape)
        self.last_shape = list(sample.shape)
        return median_ms(lambda: self._request.infer({0: sample}), runs)


def _rt_int(model: Any, key: tuple[str, ...]) -> int | None:
    if not model.has_rt_info(list(key)):
        return None
    return int(model.get_rt_info(list(key)).astype(str))


def verify_openvino(
    xml_path: str | os.PathLike,
    model: Any,
    images: np.ndarray,
    *,
    threads: int | None = 2,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    inference_precision: str = "float32",
    label: str | None = None,
    masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
) -> VerificationReport:
    """Run the IR at `xml_path` (its `.bin` beside it) on `images` and compare it with `model`.

    Arguments as `keras_pvt.export.verify_tflite`; `inference_precision` ("float32"/"bfloat16")
    is the precision OpenVINO computes in, `label` the precision named in the report and whose
    default bounds fill those left None (None: the `inference_precision`'s). The report's
    `op_histogram` counts the layer types the CPU plugin runs after its own fusions.
    """
    mode = label or inference_precision
    bounds = resolve_bounds("openvino", mode, tolerance, min_top1, min_pixel_agreement)
    path = os.fspath(xml_path)
    images = np.asarray(images, np.float32)
    runner = OpenVINORunner(path, threads, inference_precision)
    exported = runner(images)
    reference = _keras_outputs(model, images)
    figures = _comparison(model, reference, exported, dense, masks, ignore_label, bounds.max_relative_error)
    latency = runner.latency_ms(images[0], runs)
    weights = os.path.splitext(path)[0] + ".bin"
    report = VerificationReport(
        path=path,
        format="openvino",
        size_bytes=os.path.getsize(path) + (os.path.getsize(weights) if os.path.isfile(weights) else 0),
        input_shape=runner.input_shape,
        input_dtype="float32",
        sample_shape=list(images.shape),
        output_names=list(exported),
        latency_ms_median=latency,
        latency_runs=runs,
        threads=threads,
        latency_input_shape=runner.last_shape,
        op_histogram=runtime_op_counts(runner.compiled),
        quantize=label,
        **figures.report_fields(),
        **bound_fields(bounds),
    )
    judge(report)
    return report
