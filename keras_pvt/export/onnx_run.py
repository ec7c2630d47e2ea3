"""Run an ONNX file on ONNX Runtime's CPU provider next to the Keras model, and measure how far apart
they are, with the comparison and bounds of `keras_pvt.export.verify`."""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np

from keras_pvt.export.bounds import resolve_bounds
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
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

ONNX_INSTALL_HINT = 'pip install "keras-pvt[onnx]"'
PROVIDER = "CPUExecutionProvider"
MIN_IMAGE_SIZE_KEY = "keras_pvt.min_image_size"  # metadata of an exported file (`export.onnx`)


def require_onnx(what: str) -> None:
    """Raise an ImportError naming `what` if tf2onnx, onnx or onnxruntime cannot be imported."""
    for package in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError as error:
            raise ImportError(
                f"{what} needs {package}, which is not installed here; install it: `{ONNX_INSTALL_HINT}`."
            ) from error


def onnx_op_counts(path: str | os.PathLike) -> dict[str, int]:
    """``{op type: count}`` of the file's graph (before ONNX Runtime's own fusions), most first."""
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    return dict(collections.Counter(node.op_type for node in graph.node).most_common())


class ONNXRunner:
    """Named outputs of an ONNX file on ONNX Runtime's CPU provider; a fixed batch is fed in chunks."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        require_onnx("Running an ONNX file")
        import onnxruntime

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX file {path!r} does not exist.")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = onnxruntime.InferenceSession(path, options, providers=[PROVIDER])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape: list[int | None] = [d if isinstance(d, int) else None for d in first.shape]
        self.output_names = [output.name for output in self.session.get_outputs()]
        minimum = self.session.get_modelmeta().custom_metadata_map.get(MIN_IMAGE_SIZE_KEY)
        self.min_image_size = None if minimum is None else int(minimum)
        self.last_shape: list[int] = []

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        for dim, want, axis in zip(self.input_shape, images.shape, ("batch", "height", "width", "channels")):
            if dim is not None and dim != want:
                raise ValueError(
                    f"The ONNX file has fixed {axis} {dim} but the images have {want}; export with "
                    "dynamic shapes or pass images of the exported size."
                )
        if self.min_image_size is not None:
            check_image_size(images.shape[1], images.shape[2], self.min_image_size)
        self.last_shape = list(images.shape)
        values = self.session.run(self.output_names, {self.input_name: images})
        return {name: np.asarray(value, np.float32) for name, value in zip(self.output_names, values)}

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.ascontiguousarray(images, np.float32)
        batch = self.input_shape[0] or len(images)
        if len(images) % batch:
            raise ValueError(f"{len(images)} images do not split into the fixed batch {batch}.")
        chunks = [self._run(images[i : i + batch]) for i in range(0, len(images), batch)]
        return {name: np.concatenate([c[name] for c in chunks]) for name in self.output_names}

    def latency_ms(self, image: np.ndarray, runs: int) -> float:
        """Median wall time of one run on `image` (batch 1 unless the file fixes more)."""
        sample = np.repeat(np.asarray(image, np.float32)[None], self.input_shape[0] or 1, axis=0)
        self._run(sample)
        return median_ms(lambda: self.session.run(self.output_names, {self.input_name: sample}), runs)


def verify_onnx(
    path: str | os.PathLike,
    model: Any,
    images: np.ndarray,
    *,
    threads: int | None = 2,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
) -> VerificationReport:
    """Run the ONNX file at `path` on `images` and compare it with `model`.

    Arguments as `keras_pvt.export.verify_tflite`; the bounds left None are the float32 ONNX
    defaults (`bounds.DEFAULT_BOUNDS`). The report's `op_histogram` counts the file's op types.
    """
    bounds = resolve_bounds("onnx", "float32", tolerance, min_top1, min_pixel_agreement)
    path = os.fspath(path)
    images = np.asarray(images, np.float32)
    runner = ONNXRunner(path, threads)
    exported = runner(images)
    reference = _keras_outputs(model, images)
    figures = _comparison(model, reference, exported, dense, masks, ignore_label, bounds.max_relative_error)
    report = VerificationReport(
        path=path,
        format="onnx",
        size_bytes=os.path.getsize(path),
        input_shape=runner.input_shape,
        input_dtype="float32",
        sample_shape=list(images.shape),
        output_names=list(exported),
        latency_ms_median=runner.latency_ms(images[0], runs),
        latency_runs=runs,
        threads=threads,
        latency_input_shape=runner.last_shape,
        op_histogram=onnx_op_counts(path),
        quantize="float32",
        **figures.report_fields(),
        **bound_fields(bounds),
    )
    judge(report)
    return report
