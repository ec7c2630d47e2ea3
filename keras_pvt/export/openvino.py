"""Keras model -> OpenVINO model in memory, or an OpenVINO IR (`.xml` + `.bin`) verified against Keras.

The serving function (`export.signature`) is traced on the OpenVINO rewrite of the model
(`export.kernel_choice`) and its concrete function handed to `openvino.convert_model`, whose
TensorFlow frontend reads it directly: no SavedModel on disk, weights folded in as constants.
The input is named ``images`` and the outputs keep the model's names, as in the other exports.

Precisions (all computed on the CPU plugin): "float32"; "float16" stores the weights in float16
(half the file; OpenVINO decompresses them and computes in float32); "bfloat16" stores float32
weights and is verified and timed with OpenVINO's bfloat16 inference precision hint, which the
user sets when compiling (an IR cannot carry it). OpenVINO offers int8 only through NNCF, a
separate package that keras-pvt does not use.
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

from keras_pvt._requires import require_openvino
from keras_pvt._safe_write import OPENVINO_BIN, OPENVINO_XML, check_output, scratch_folder, staged_output
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
from keras_pvt.export.errors import ExportError, VerificationError
from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES, verification_images
from keras_pvt.export.kernel_choice import openvino_kernel_table
from keras_pvt.export.openvino_run import MIN_IMAGE_SIZE_KEY, model_op_counts, verify_openvino
from keras_pvt.export.saved_model import input_spec
from keras_pvt.export.signature import INPUT_NAME, output_names, serving_function
from keras_pvt.export.verify import DEFAULT_RUNS, VerificationReport
from keras_pvt.images import parse_image_size
from keras_pvt.layers.size_check import model_min_image_size
from keras_pvt.rewrites import Rewrite, rewritten

PRECISIONS = ("float32", "float16", "bfloat16")
OPENVINO_PRECISIONS = PRECISIONS
FORMAT_KEY = ("keras_pvt", "format")
IR_FORMAT = "keras-pvt-openvino-ir"


@dataclasses.dataclass
class OpenVINOExportResult:
    """A written IR and how it was made; `verification` is None if skipped.

    `model_ops` counts the op types of the converted model (after OpenVINO's conversion-time
    fusions: MVN, Gelu, ScaledDotProductAttention); the verification report's `op_histogram`
    counts what the CPU plugin runs.
    """

    path: str
    weights_path: str
    precision: str
    size_bytes: int
    input_shape: list[int | None]
    kernel_table: str
    conversion_seconds: float
    model_ops: dict[str, int]
    verification: VerificationReport | None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["verification"] = self.verification.to_dict() if self.verification else None
        return out


def weights_path(xml_path: str | os.PathLike) -> Path:
    """The `.bin` that goes with an IR `.xml` (OpenVINO looks for it beside, same stem)."""
    return Path(xml_path).with_suffix(".bin")


def check_openvino_output(
    output_path: str | os.PathLike, *, overwrite: bool = False, inputs: Sequence[Any] = ()
) -> None:
    """Raise before any work unless the `.xml` and its `.bin` can be written (see `_safe_write`)."""
    if Path(output_path).suffix.lower() != ".xml":
        raise ValueError(
            f"An OpenVINO IR is written as NAME.xml (+ NAME.bin); give an output path ending in "
            f".xml, e.g. {str(Path(output_path).with_suffix('.xml'))!r}."
        )
    check_output(output_path, OPENVINO_XML, overwrite=overwrite, inputs=inputs)
    check_output(weights_path(output_path), OPENVINO_BIN, overwrite=overwrite, inputs=inputs)


def convert_to_openvino_model(
    model: Any,
    *,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    kernel_table: Rewrite | None = None,
) -> Any:
    """`model` as an `openvino.Model` (in memory), input ``images`` float32 NHWC, named outputs.

    Args:
        model: a Keras model with one NHWC image input (a classifier, `features_only`, a segmenter).
        image_size: None keeps height and width dynamic; an int or (height, width) fixes them.
        batch_size: None keeps the batch dynamic; an int fixes it.
        kernel_table: the rewrite the graph is traced with; None = `openvino_kernel_table()`.
    """
    require_openvino("OpenVINO conversion")
    import openvino

    spec = input_spec(model, parse_image_size(image_size), batch_size)
    table = kernel_table or openvino_kernel_table()
    traced = rewritten(model, table)
    function = tf.function(serving_function(traced), input_signature=[spec], autograph=False)
    concrete = function.get_concrete_function()
    try:
        converted = openvino.convert_model(concrete)
    except Exception as error:  # the frontend raises RuntimeError/OpConversionFailure with a long log
        first = next((line for line in str(error).splitlines() if line.strip()), repr(error))
        raise ExportError(f"OpenVINO conversion failed: {first}") from error
    _check_names(converted, model)
    converted.set_rt_info(IR_FORMAT, list(FORMAT_KEY))
    minimum = model_min_image_size(model)
    if minimum is not None:
        converted.set_rt_info(str(minimum), list(MIN_IMAGE_SIZE_KEY))
    return converted


def _check_names(converted: Any, model: Any) -> None:
    """Name the input ``images`` and make each output carry its Keras name (a lone one may not)."""
    converted.inputs[0].get_tensor().set_names({INPUT_NAME})
    names = output_names(model)
    ports = list(converted.outputs)
    if len(ports) == 1 and len(names) == 1:
        ports[0].get_tensor().set_names({names[0]})
        return
    found = sorted(name for port in ports for name in port.get_names() if name in names)
    if found != sorted(names):
        raise ExportError(f"The OpenVINO model's outputs {found} are not the Keras model's {names}.")


def export_openvino(
    model: Any,
    output_path: str | os.PathLike,
    *,
    precision: str = "float32",
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
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
    kernel_table: Rewrite | None = None,
    overwrite: bool = False,
) -> OpenVINOExportResult:
    """Convert `model`, write the IR at `output_path` (``NAME.xml`` + ``NAME.bin``), verify it.

    Args:
        model: a Keras model with one NHWC image input.
        output_path: the `.xml`; its weights go to the `.bin` of the same stem. Both are written
            beside and renamed into place only after verification passed.
        precision: "float32", "float16" (float16 weights) or "bfloat16" (run precision hint).
        image_size, batch_size: as `convert_to_openvino_model` (None = dynamic).
        verify: run the IR with OpenVINO on `verify_images` (default: `num_images` seeded random
            images, 224x224 when the size is dynamic) and compare with the model; a failure raises
            `VerificationError` and leaves `output_path` as it was.
        threads, runs: OpenVINO CPU threads and timed runs for the latency in the report.
        tolerance (the largest relative error), min_top1, min_pixel_agreement: the bounds, None =
            the precision's default (`keras_pvt.export.bounds.DEFAULT_BOUNDS`).
        verify_masks, dense, ignore_label: as `convert_to_tflite`'s `VerifyOptions`.
        kernel_table: None = `openvino_kernel_table()`.
        overwrite: replace a previous keras-pvt IR at `output_path` (its `.xml` carries a
            keras-pvt rt_info entry, its `.bin` the size the `.xml` names). Anything else there is
            never replaced: `OutputRefusedError`, raised before any work.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown OpenVINO precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    check_openvino_output(output_path, overwrite=overwrite)
    spec = input_spec(model, parse_image_size(image_size), batch_size)
    samples = _samples(model, spec, verify_images, num_images) if verify else None

    checks = {
        "threads": threads,
        "runs": runs,
        "tolerance": tolerance,
        "min_top1": min_top1,
        "masks": verify_masks,
        "min_pixel_agreement": min_pixel_agreement,
        "dense": dense,
        "ignore_label": ignore_label,
    }
    start = time.perf_counter()
    converted = convert_to_openvino_model(
        model, image_size=image_size, batch_size=batch_size, kernel_table=kernel_table
    )
    seconds = time.perf_counter() - start
    table = kernel_table or openvino_kernel_table()
    bin_path = weights_path(output_path)
    report, size = _write_verified(converted, output_path, precision, overwrite, model, samples, checks)
    return OpenVINOExportResult(
        path=os.fspath(output_path),
        weights_path=os.fspath(bin_path),
        precision=precision,
        size_bytes=size,
        input_shape=list(spec.shape),
        kernel_table=table.name if table is not None else "default",
        conversion_seconds=seconds,
        model_ops=model_op_counts(converted),
        verification=report,
    )


def _write_verified(
    converted: Any,
    output_path: Any,
    precision: str,
    overwrite: bool,
    model: Any,
    samples: np.ndarray | None,
    checks: dict[str, Any],
) -> tuple[VerificationReport | None, int]:
    """Save the IR in a scratch folder, verify it (when `samples`), then rename both files into place.

    The `.bin` is renamed first, then the `.xml`; a failure before leaves both paths as they were.
    """
    bin_path = weights_path(output_path)
    with (
        scratch_folder(output_path, ".openvino") as work,
        staged_output(output_path, OPENVINO_XML, overwrite=overwrite) as xml_stage,
        staged_output(bin_path, OPENVINO_BIN, overwrite=overwrite) as bin_stage,
    ):
        _save(converted, work / "model.xml", precision)
        report = None
        if samples is not None:
            report = _verify(work / "model.xml", model, samples, precision, output_path, checks)
        size = (work / "model.xml").stat().st_size + (work / "model.bin").stat().st_size
        os.replace(work / "model.xml", xml_stage)
        os.replace(work / "model.bin", bin_stage)
    return report, size


def _verify(
    xml: Path, model: Any, samples: np.ndarray, precision: str, output_path: Any, checks: dict[str, Any]
) -> VerificationReport:
    """`verify_openvino` of the staged IR with `checks` (bounds left None: the precision's); raises
    on failure."""
    masks = checks["masks"]
    report = verify_openvino(
        xml,
        model,
        samples,
        threads=checks["threads"],
        runs=checks["runs"],
        tolerance=checks["tolerance"],
        min_top1=checks["min_top1"],
        inference_precision="bfloat16" if precision == "bfloat16" else "float32",
        label=precision,
        masks=None if masks is None else np.asarray(masks)[: len(samples)],
        min_pixel_agreement=checks["min_pixel_agreement"],
        dense=checks["dense"],
        ignore_label=checks["ignore_label"],
    )
    report.path = os.fspath(output_path)
    if not report.ok:
        raise VerificationError(
            report, f"Verification of the {precision} OpenVINO IR failed: " + " ".join(report.failures)
        )
    return report


def _save(converted: Any, xml: Path, precision: str) -> None:
    """`openvino.save_model`, weights in float16 only for "float16" (its default compresses)."""
    import openvino

    openvino.save_model(converted, os.fspath(xml), compress_to_fp16=precision == "float16")


def _samples(model: Any, spec: Any, verify_images: Any, num_images: int) -> np.ndarray:
    """Verification images: the given ones (arrays, folders, tfds:), else seeded random ones."""
    size = tuple(spec.shape[1:3]) if None not in spec.shape[1:3] else None
    return verification_images(model, spec, size, num_images, given=verify_images)
