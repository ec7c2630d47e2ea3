"""Keras model -> `.tflite` (LiteRT) with TFLite builtin ops only, optionally quantised, verified.

The conversion goes Keras -> SavedModel (`keras.export.ExportArchive`) -> `from_saved_model`:
`from_concrete_functions` on a Keras 3 model can leave variables uninitialised (VAR_HANDLE ops, a
tiny file, NaN outputs). Unlike Keras' own litert export, SELECT_TF_OPS (Flex) is never enabled.

Two int8 modes, both calibrated on representative images:
- "int8": mixed int8 for CPUs (LiteRT's XNNPACK delegate): convolutions, dense layers and the
  other ops XNNPACK runs in int8 are quantized, the op types it has no int8 kernel for stay
  float32 (`int8_mixed.FLOAT_OPS`), so the delegate takes the whole graph. Made with TensorFlow's
  public `tf.lite.experimental.QuantizationDebugger` and its `denylisted_ops` (see `int8_mixed`:
  the converter alone cannot keep chosen op types in float).
- "int8-full": every op integer (the converter's full-integer quantization), for accelerators
  and microcontrollers that run int8 only; `strict_int8` and `int8_io` apply to it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from keras_pvt._keywords import options_from
from keras_pvt._safe_write import TFLITE, check_output, scratch_folder, staged_output
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
from keras_pvt.export.errors import ExportError, UnsupportedOpsError, VerificationError
from keras_pvt.export.images import (
    DEFAULT_VERIFY_IMAGES,
    check_calibration_images,
    load_images,
    verification_images,
)
from keras_pvt.export.int8_mixed import quantize_mixed
from keras_pvt.export.kernel_choice import tflite_kernel_table
from keras_pvt.export.saved_model import export_saved_model, input_spec
from keras_pvt.export.verify import DEFAULT_RUNS, VerificationReport, verify_tflite
from keras_pvt.images import parse_image_size as image_size_pair

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8", "int8-full")
# The modes calibrated on representative data (activations in int8).
CALIBRATED_MODES = ("int8", "int8-full")
# The names of the TFLite files in the demos' and notebooks' comparison tables -> quantization mode.
TFLITE_FORMATS = {
    "tflite_float": "none",
    "tflite_float16": "float16",
    "tflite_dynamic": "dynamic",
    "tflite_int8": "int8",
    "tflite_int8_full": "int8-full",
}
DEFAULT_CALIBRATION_IMAGES = 32
_TF_OP = re.compile(r"\btf\.([A-Z][A-Za-z0-9_]*)")
_FLEX_OP = re.compile(r"\bFlex([A-Z][A-Za-z0-9_]*)")


def _refuse_calibrating_detections(model: Any, quantize: str) -> None:
    """Refuse int8 calibration of a detector with its post-processing: TensorFlow 2.21's calibrator
    crashes the whole process (a segmentation fault) on the NMS loop instead of raising."""
    from keras_pvt.detection.layers import RetinaNetDetections

    layers = getattr(model, "layers", ())
    if quantize in CALIBRATED_MODES and any(isinstance(layer, RetinaNetDetections) for layer in layers):
        raise ValueError(
            f"quantize={quantize!r} cannot calibrate a detector's post-processing (NMS): TensorFlow's "
            "int8 calibrator crashes on it. Convert the head's raw outputs instead, "
            "`convert_to_tflite(keras_pvt.detection.raw_model(model), ...)`, and decode and run NMS "
            "in float, or keep the detections in the file with quantize='float16' or 'none'."
        )


@dataclasses.dataclass
class ConversionResult:
    """A written `.tflite` file and how it was made; `verification` is None if skipped.

    `float_ops` / `int8_ops`: the op types computing in float / in int8, ``{op type: count}``
    (QUANTIZE/DEQUANTIZE in neither); for "int8" the first are the ops kept float on purpose.
    """

    path: str
    quantize: str
    size_bytes: int
    input_shape: list[int | None]
    int8_io: bool
    calibration_images: int
    conversion_seconds: float
    verification: VerificationReport | None
    float_ops: dict[str, int] = dataclasses.field(default_factory=dict)
    int8_ops: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["verification"] = self.verification.to_dict() if self.verification else None
        return out


def check_quantize(
    quantize: str, representative_data: Any, int8_io: bool = False, strict_int8: bool = False
) -> None:
    """Fail fast (before any work) on an unknown mode, int8 without calibration images, or
    `int8_io` / `strict_int8` outside "int8-full"."""
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"Unknown quantization mode {quantize!r}; choose one of {', '.join(QUANTIZE_MODES)}."
        )
    if quantize in CALIBRATED_MODES and representative_data is None:
        raise ValueError(
            f"{quantize} quantization needs representative data to calibrate activation ranges: "
            "pass images (an array, a folder of images or 'tfds:NAME:SPLIT'), e.g. --representative DIR."
        )
    for flag, given in (("int8_io", int8_io), ("strict_int8", strict_int8)):
        if given and quantize != "int8-full":
            mixed = " ('int8' is mixed int8: it keeps some ops in float by design)"
            raise ValueError(
                f"{flag} (--{flag.replace('_', '-')}) needs full integer quantization: use "
                f"quantize='int8-full' (--quantize int8-full), not {quantize!r}"
                + (mixed if quantize == "int8" else "")
                + "."
            )


def representative_dataset(images: np.ndarray, batch_size: int | None = None) -> Callable[[], Any]:
    """The converter's calibration generator: one model-ready batch per step."""
    batch = batch_size or 1
    if len(images) < batch:
        raise ValueError(f"Need at least {batch} calibration images for batch {batch}.")

    def generate() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(images) - batch + 1, batch):
            yield [images[start : start + batch].astype(np.float32)]

    return generate


def unsupported_ops(message: str) -> list[str]:
    """TensorFlow op names that a converter error message says have no builtin kernel."""
    names = set(_TF_OP.findall(message)) | set(_FLEX_OP.findall(message))
    return sorted(names)


def _converter(
    saved_model_dir: str,
    quantize: str,
    calibration: np.ndarray | None,
    batch_size: int | None,
    int8_io: bool,
    strict_int8: bool,
) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8-full":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration, batch_size)
        converter.target_spec.supported_ops = (
            [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if strict_int8
            else [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        )
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter


def _convert(
    converter: Any,
    quantize: str,
    strict_int8: bool,
    calibration: np.ndarray | None = None,
    batch_size: int | None = None,
) -> bytes:
    """The flatbuffer of `converter`; mixed int8 ("int8") goes through `int8_mixed`."""
    try:
        if quantize == "int8":
            return quantize_mixed(converter, representative_dataset(calibration, batch_size))
        return converter.convert()
    except Exception as error:  # ConverterError and friends; re-raised with the op names
        message = str(error)
        ops = unsupported_ops(message)
        if ops:
            kind = "full-integer int8 kernels" if strict_int8 else "TFLite builtin kernels"
            raise UnsupportedOpsError(
                ops,
                f"Conversion ({quantize}) failed: no {kind} for TensorFlow op(s) "
                f"{', '.join(ops)}. keras-pvt converts with builtin ops only (no Flex/SELECT_TF_OPS): "
                "replace the layer that emits them with builtin-expressible ops"
                + (", or allow float fallback (strict_int8=False)." if strict_int8 else "."),
            ) from error
        first = next((line for line in message.splitlines() if line.strip()), repr(error))
        raise ExportError(f"TFLite conversion ({quantize}) failed: {first}") from error


def _check_all_int8(flatbuffer: bytes) -> None:
    """Strict int8: the converter may still leave ops without int8 kernels in float; refuse them."""
    from keras_pvt.export.verify import analyze_ops

    floats = {k: v for k, v in analyze_ops(flatbuffer)[1].items() if k != "DEQUANTIZE"}
    if floats:
        listed = ", ".join(f"{name} x{count}" for name, count in floats.items())
        raise UnsupportedOpsError(
            sorted(floats),
            f"Strict int8 conversion left op(s) in float: {listed}. These TFLite ops have no int8 "
            "kernel here; rewrite the layers that emit them or drop strict_int8 (--strict-int8) to "
            "accept float fallback.",
        )


@dataclasses.dataclass(frozen=True)
class TFLiteOptions:
    """The conversion arguments of `convert_to_tflite` (documented there), checked together when made.

    An unknown mode, an int8 mode without calibration images, or `int8_io` / `strict_int8` with
    another mode than "int8-full" raise `ValueError`.
    """

    quantize: str = "none"
    representative_data: Any = None
    num_calibration: int = DEFAULT_CALIBRATION_IMAGES
    image_size: int | Sequence[int] | None = None
    batch_size: int | None = None
    int8_io: bool = False
    strict_int8: bool = False
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        check_quantize(self.quantize, self.representative_data, self.int8_io, self.strict_int8)


@dataclasses.dataclass(frozen=True)
class VerifyOptions:
    """The verification arguments of `convert_to_tflite` (documented there), checked when made."""

    verify: bool = True
    verify_images: Any = None
    num_verify: int = DEFAULT_VERIFY_IMAGES
    threads: int | None = 2
    runs: int = DEFAULT_RUNS
    tolerance: float | None = None
    min_top1: float | None = None
    verify_masks: Any = None
    min_pixel_agreement: float | None = None
    dense: bool | None = None
    ignore_label: int | None = DEFAULT_IGNORE_LABEL

    def __post_init__(self) -> None:
        if self.verify_masks is not None and self.verify_images is None:
            raise ValueError("`verify_masks` are the masks of `verify_images`: give both.")
        if not isinstance(self.num_verify, int) or self.num_verify < 1:
            raise ValueError(f"`num_verify` must be a positive int, got {self.num_verify!r}.")


def convert_to_tflite(
    model: Any,
    output_path: str | os.PathLike,
    *,
    quantize: str = "none",
    representative_data: Any = None,
    num_calibration: int = DEFAULT_CALIBRATION_IMAGES,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    int8_io: bool = False,
    strict_int8: bool = False,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    data_dir: str | None = None,
    verify: bool = True,
    verify_images: Any = None,
    num_verify: int = DEFAULT_VERIFY_IMAGES,
    threads: int | None = 2,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    verify_masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
    overwrite: bool = False,
) -> ConversionResult:
    """Convert `model` to a builtin-ops-only `.tflite` at `output_path`, then verify it.

    Args:
        model: a Keras model with one NHWC image input.
        output_path: the `.tflite` file; written only if conversion and verification succeed.
        quantize: "none" (float32), "float16" (float16 weights), "dynamic" (int8 weights, float
            activations), "int8" (mixed int8 for XNNPACK: convolutions and dense layers int8, the
            op types XNNPACK has no int8 kernel for float32) or "int8-full" (every op integer);
            both int8 modes are calibrated on `representative_data`.
        representative_data: calibration images for int8 modes: an array, a folder, a
            tf.data.Dataset or "tfds:NAME:SPLIT" (see `load_images`); the first `num_calibration`
            images calibrate (refused if all are flat, e.g. black), up to half the verification
            images are held out from those after them.
        image_size: None keeps height/width dynamic (resize inputs with `resize_tensor_input`); an
            int or (height, width) fixes them. With ``batch_size=1`` the whole graph is static,
            which lets XNNPACK delegate every node.
        batch_size: None = dynamic batch.
        int8_io: with "int8-full", make the input and output tensors int8 (else float32 with
            quantize/dequantize ops inside).
        strict_int8: with "int8-full", fail if any op has no int8 kernel instead of leaving it in
            float.
        preprocess: raw-pixel preprocessing for folders/uint8 data (default: ImageNet mean/std,
            none for a model that normalises itself; its calibration data are then raw pixels).
        data_dir: tensorflow-datasets folder for "tfds:" sources.
        verify: run the file with LiteRT on the verification images and compare with the model;
            a failure (non-finite outputs, a bound breached) raises `VerificationError` and leaves
            the output path as it was.
        verify_images: images for verification, all used; default: `num_verify` images, for int8
            modes up to half of them held out from `representative_data` (never calibrated on),
            the rest seeded random images at the conversion's size (224x224 when dynamic).
        num_verify: how many verification images are drawn when `verify_images` is None.
        threads, runs: interpreter threads and timed runs for the latency in the report.
        tolerance: the largest relative error of any output (`keras_pvt.export.bounds`).
        min_top1: a classifier's smallest top-1 agreement with the model.
        verify_masks: for a segmenter, ground-truth masks (N, H, W) of `verify_images`: the report
            adds the Keras model's and the file's mIoU against them.
        min_pixel_agreement: a segmenter's smallest fraction of pixels whose argmax matches Keras.
        dense: per-pixel verification; None = when the model is a keras-pvt segmenter.
        ignore_label: mask value left out of the mIoU against `verify_masks`.
        overwrite: replace a previous `.tflite` at `output_path` (recognised by its TFL3
            identifier). Anything else there is never replaced: `OutputRefusedError`, raised
            before any work. The new file is written beside and renamed into place.

    The three bounds left None take the mode's default (`keras_pvt.export.bounds.DEFAULT_BOUNDS`).
    Bad arguments raise `ValueError` before any work (`TFLiteOptions`, `VerifyOptions`).
    """
    arguments = locals()
    options = options_from(convert_to_tflite, arguments, TFLiteOptions)
    checks = options_from(convert_to_tflite, arguments, VerifyOptions)
    check_output(output_path, TFLITE, overwrite=overwrite)
    _refuse_calibrating_detections(model, options.quantize)
    size = image_size_pair(options.image_size)
    spec = input_spec(model, size, options.batch_size)
    data_size = size or _built_size(spec)
    calibration, held_out = _representative_images(options, checks, data_size, model)
    samples = _verification_images(checks, held_out, data_size, spec, options, model)

    start = time.perf_counter()
    with staged_output(output_path, TFLITE, overwrite=overwrite) as stage:
        flatbuffer = _flatbuffer(model, output_path, options, size, calibration)
        seconds = time.perf_counter() - start
        stage.write_bytes(flatbuffer)
        sources = _image_sources(checks, held_out, samples)
        report = _verify(stage, model, samples, checks, options.quantize, output_path, sources)
    float_ops, int8_ops = _op_types(flatbuffer)
    return ConversionResult(
        path=os.fspath(output_path),
        quantize=options.quantize,
        size_bytes=len(flatbuffer),
        input_shape=list(spec.shape),
        int8_io=options.int8_io,
        calibration_images=0 if calibration is None else len(calibration),
        conversion_seconds=seconds,
        verification=report,
        float_ops=float_ops,
        int8_ops=int8_ops,
    )


def _representative_images(
    options: TFLiteOptions, checks: VerifyOptions, size: tuple[int, int] | None, model: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(calibration, held-out) images of an int8 mode: the first `num_calibration` representative
    images calibrate, up to half of `num_verify` after them are held out for verification."""
    if options.quantize not in CALIBRATED_MODES:
        return None, None
    drawn = checks.verify and checks.verify_images is None
    held = checks.num_verify - checks.num_verify // 2 if drawn else 0
    images = load_images(
        options.representative_data,
        image_size=size,
        limit=options.num_calibration + held,
        preprocess=options.preprocess,
        data_dir=options.data_dir,
        model=model,
    )
    calibration = images[: options.num_calibration]
    check_calibration_images(calibration)
    return calibration, images[options.num_calibration :]


def _flatbuffer(
    model: Any,
    output_path: str | os.PathLike,
    options: TFLiteOptions,
    size: tuple[int, int] | None,
    calibration: np.ndarray | None,
) -> bytes:
    """Keras -> SavedModel (in a scratch folder beside the output) -> TFLite flatbuffer."""
    with scratch_folder(output_path, ".saved_model") as workdir:  # cleaned after a kill
        saved_model = str(workdir / "saved_model")
        export_saved_model(
            model,
            saved_model,
            image_size=size,
            batch_size=options.batch_size,
            kernel_table=tflite_kernel_table(options.quantize),
        )
        converter = _converter(
            saved_model,
            options.quantize,
            calibration,
            options.batch_size,
            options.int8_io,
            options.strict_int8,
        )
        flatbuffer = _convert(
            converter, options.quantize, options.strict_int8, calibration, options.batch_size
        )
    if options.strict_int8:
        _check_all_int8(flatbuffer)
    return flatbuffer


def _op_types(flatbuffer: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """(ops computing in float, ops computing in int8) of the file, ``{op type: count}``;
    QUANTIZE/DEQUANTIZE, the conversions between the two, are in neither."""
    from keras_pvt.export.verify import op_type_counts

    conversions = ("QUANTIZE", "DEQUANTIZE")
    _, floats, integer = op_type_counts(flatbuffer)
    float_ops = {name: count for name, count in floats.items() if name not in conversions}
    int8_ops = {name: count for name, count in integer.items() if name not in conversions}
    return float_ops, int8_ops


def _verify(
    stage: Any,
    model: Any,
    samples: np.ndarray | None,
    checks: VerifyOptions,
    quantize: str,
    output_path: str | os.PathLike,
    image_sources: dict[str, int] | None = None,
) -> VerificationReport | None:
    """The verification report of the staged file (None when skipped); a failure raises."""
    if not checks.verify:
        return None
    masks = None if checks.verify_masks is None else np.asarray(checks.verify_masks)[: len(samples)]
    report = verify_tflite(
        stage,
        model,
        samples,
        threads=checks.threads,
        runs=checks.runs,
        tolerance=checks.tolerance,
        min_top1=checks.min_top1,
        quantize=quantize,
        masks=masks,
        min_pixel_agreement=checks.min_pixel_agreement,
        dense=checks.dense,
        ignore_label=checks.ignore_label,
        image_sources=image_sources,
    )
    report.path = os.fspath(output_path)
    if not report.ok:
        raise VerificationError(
            report, f"Verification of the {quantize} TFLite file failed: " + " ".join(report.failures)
        )
    return report


def _built_size(spec: Any) -> tuple[int, int] | None:
    height, width = spec.shape[1], spec.shape[2]
    return (height, width) if height is not None and width is not None else None


def _verification_images(
    checks: VerifyOptions,
    held_out: np.ndarray | None,
    size: tuple[int, int] | None,
    spec: Any,
    options: TFLiteOptions,
    model: Any,
) -> np.ndarray | None:
    if not checks.verify:
        return None
    return verification_images(
        model,
        spec,
        size,
        checks.num_verify,
        given=checks.verify_images,
        held_out=held_out,
        preprocess=options.preprocess,
        data_dir=options.data_dir,
    )


def _image_sources(
    checks: VerifyOptions, held_out: np.ndarray | None, samples: np.ndarray | None
) -> dict[str, int] | None:
    """How many verification images are held out (first) and generated; None for given images."""
    if samples is None or checks.verify_images is not None:
        return None
    held = min(0 if held_out is None else len(held_out), len(samples))
    return {"held_out": held, "generated": len(samples) - held}
