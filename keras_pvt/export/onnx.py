"""Keras model -> ONNX file verified on ONNX Runtime against the Keras model.

The serving function (`export.signature`) is traced and handed to tf2onnx's `from_function`, the
converter Keras' own ``Model.export(format="onnx")`` uses on TensorFlow. Converting the serving
function instead of ``model.__call__`` keeps this export's names those of the others: the input is
``images`` and each output carries the model's output name (Keras' export names them
``output_0`` ...). The file carries a keras-pvt marker in its doc string, so a later export
recognises it as its own (`_safe_write.ONNX`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_pvt._safe_write import ONNX, ONNX_MARKER, check_output, staged_output
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
from keras_pvt.export.errors import ExportError, VerificationError
from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES, verification_images
from keras_pvt.export.onnx_run import MIN_IMAGE_SIZE_KEY, require_onnx, verify_onnx
from keras_pvt.export.saved_model import input_spec
from keras_pvt.export.signature import serving_function
from keras_pvt.export.verify import DEFAULT_RUNS, VerificationReport
from keras_pvt.images import parse_image_size
from keras_pvt.layers.size_check import model_min_image_size

DEFAULT_OPSET = 17


@dataclasses.dataclass
class ONNXExportResult:
    """A written `.onnx` file and how it was made; `verification` is None if skipped."""

    path: str
    opset: int
    size_bytes: int
    input_shape: list[int | None]
    conversion_seconds: float
    verification: VerificationReport | None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["verification"] = self.verification.to_dict() if self.verification else None
        return out


def check_onnx_output(
    output_path: str | os.PathLike, *, overwrite: bool = False, inputs: Sequence[Any] = ()
) -> None:
    """Raise before any work unless a `.onnx` file can be written at `output_path` (`_safe_write`)."""
    if Path(output_path).suffix.lower() != ".onnx":
        raise ValueError(
            f"An ONNX export is written as NAME.onnx; give an output path ending in .onnx, e.g. "
            f"{str(Path(output_path).with_suffix('.onnx'))!r}."
        )
    check_output(output_path, ONNX, overwrite=overwrite, inputs=inputs)


def convert_to_onnx_model(
    model: Any,
    *,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> Any:
    """`model` as an `onnx.ModelProto` (in memory): input ``images`` float32 NHWC, named outputs."""
    require_onnx("ONNX conversion")
    import tf2onnx

    spec = input_spec(model, parse_image_size(image_size), batch_size)
    function = tf.function(serving_function(model), input_signature=[spec], autograph=False)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    except Exception as error:  # tf2onnx raises many types with a long log
        first = next((line for line in str(error).splitlines() if line.strip()), repr(error))
        raise ExportError(f"ONNX conversion failed: {first}") from error
    proto.doc_string = ONNX_MARKER.decode()
    minimum = model_min_image_size(model)  # ONNX Runtime would fail deep inside on smaller images
    if minimum is not None:
        proto.metadata_props.add(key=MIN_IMAGE_SIZE_KEY, value=str(minimum))
    return proto


def export_onnx(
    model: Any,
    output_path: str | os.PathLike,
    *,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    verify_images: Any = None,
    num_images: int = DEFAULT_VERIFY_IMAGES,
    threads: int | None = 2,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    verify_masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
    overwrite: bool = False,
) -> ONNXExportResult:
    """Convert `model`, write it at `output_path` (``NAME.onnx``) and verify it on ONNX Runtime.

    Args:
        model: a Keras model with one NHWC image input.
        output_path: the `.onnx` file, written beside and renamed into place only after
            verification passed.
        image_size, batch_size: None keeps them dynamic; an int (or (height, width)) fixes them.
        opset: the ONNX opset of the file.
        verify: run the file with ONNX Runtime on `verify_images` (default: `num_images` seeded
            random images, 224x224 when the size is dynamic) and compare with the model; a failure
            raises `VerificationError` and leaves `output_path` as it was.
        threads, runs: ONNX Runtime intra-op threads and timed runs for the latency in the report.
        tolerance (the largest relative error), min_top1, min_pixel_agreement: the bounds, None =
            the float32 default (`keras_pvt.export.bounds.DEFAULT_BOUNDS`).
        verify_masks, dense, ignore_label: as `convert_to_tflite`'s.
        overwrite: replace a previous keras-pvt `.onnx` at `output_path` (recognised by its
            marker). Anything else there is never replaced: `OutputRefusedError`, raised before any
            work.
    """
    check_onnx_output(output_path, overwrite=overwrite)
    spec = input_spec(model, parse_image_size(image_size), batch_size)
    samples = None
    if verify:
        size = tuple(spec.shape[1:3]) if None not in spec.shape[1:3] else None
        samples = verification_images(model, spec, size, num_images, given=verify_images)
    start = time.perf_counter()
    proto = convert_to_onnx_model(model, image_size=image_size, batch_size=batch_size, opset=opset)
    seconds = time.perf_counter() - start
    content = proto.SerializeToString()
    report = None
    with staged_output(output_path, ONNX, overwrite=overwrite) as stage:
        stage.write_bytes(content)
        if samples is not None:
            report = verify_onnx(
                stage,
                model,
                samples,
                threads=threads,
                runs=runs,
                tolerance=tolerance,
                min_top1=min_top1,
                masks=None if verify_masks is None else np.asarray(verify_masks)[: len(samples)],
                min_pixel_agreement=min_pixel_agreement,
                dense=dense,
                ignore_label=ignore_label,
            )
            report.path = os.fspath(output_path)
            if not report.ok:
                raise VerificationError(
                    report, "Verification of the ONNX file failed: " + " ".join(report.failures)
                )
    return ONNXExportResult(
        path=os.fspath(output_path),
        opset=opset,
        size_bytes=len(content),
        input_shape=list(spec.shape),
        conversion_seconds=seconds,
        verification=report,
    )
