"""`keras-pvt export`: a Keras model or a preset -> a verified SavedModel, TFLite, OpenVINO IR or ONNX.

    keras-pvt export model.keras --format saved_model --output DIR
    keras-pvt export model.keras --format openvino --openvino-precision float16 --output m.xml
    keras-pvt export model.keras --format onnx --output m.onnx
    keras-pvt export --variant b0 --weights W --format tflite --quantize int8 \\
        --representative DIR --output m.tflite

Exit codes: 0 written (status OK, or INCONCLUSIVE: the agreement could not judge and the relative
error passed), 1 verification FAILED (nothing written), 2 refused input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from keras_pvt._safe_write import EXPORT_REPORT, KERAS_MODEL, KERAS_WEIGHTS, SAVED_MODEL, TFLITE, check_output
from keras_pvt.export.bounds import DEFAULT_BOUNDS
from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES
from keras_pvt.export.onnx import DEFAULT_OPSET, check_onnx_output
from keras_pvt.export.onnx_run import require_onnx
from keras_pvt.export.openvino import PRECISIONS as OPENVINO_PRECISIONS
from keras_pvt.export.openvino import check_openvino_output
from keras_pvt.export.tflite import (
    QUANTIZE_MODES,
    TFLiteOptions,
    VerifyOptions,
    check_quantize,
)

FORMATS = ("saved_model", "tflite", "openvino", "onnx")
# Flag defaults come from the conversion and verification options.
TFLITE_DEFAULTS, VERIFY_DEFAULTS = TFLiteOptions(), VerifyOptions()
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
EXIT_VERIFICATION_FAILED = 1
QUANTIZE_HELP = (
    "TFLite only: int8 = mixed int8, fast on CPUs (XNNPACK), the ops without an XNNPACK int8 kernel "
    "stay float; int8-full = every op integer (NPUs, Edge TPU, microcontrollers)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model as a verified SavedModel, TFLite file, OpenVINO IR or ONNX file",
        description="Export a Keras model file or a preset to SavedModel, TFLite (builtin ops "
        "only), OpenVINO IR or ONNX, verify it against the Keras model (ONNX on ONNX Runtime) and "
        "write a JSON report next to the output.",
    )
    source = parser.add_argument_group("model (a .keras file, or a preset)")
    source.add_argument("model", nargs="?", help="a saved Keras model (.keras)")
    source.add_argument("--variant", help="preset to build instead (b0 ... b5, b2_li)")
    source.add_argument("--weights", help="with --variant: 'imagenet' or a checkpoint path")
    source.add_argument("--classes", type=int, help="with --variant: classifier width")
    source.add_argument(
        "--features-only", action="store_true", help="with --variant: export the 4 stage maps"
    )
    out = parser.add_argument_group("export")
    out.add_argument("--format", choices=FORMATS, default="tflite", help="default: tflite")
    out.add_argument(
        "--output",
        required=True,
        help="output .tflite file, SavedModel folder, OpenVINO NAME.xml (+ NAME.bin) or NAME.onnx",
    )
    _add_openvino_flags(out)
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous export of the same format at --output (nothing else is ever replaced)",
    )
    out.add_argument(
        "--quantize", choices=QUANTIZE_MODES, default=TFLITE_DEFAULTS.quantize, help=QUANTIZE_HELP
    )
    out.add_argument(
        "--representative",
        help="calibration images for int8: a folder of images or tfds:NAME:SPLIT",
    )
    out.add_argument("--data-dir", help="tensorflow-datasets folder for tfds: sources")
    out.add_argument(
        "--num-calibration",
        type=int,
        default=TFLITE_DEFAULTS.num_calibration,
        help="calibration images used",
    )
    out.add_argument("--int8-io", action="store_true", help="int8 input/output tensors (int8-full)")
    out.add_argument("--strict-int8", action="store_true", help="fail if an op is left in float (int8-full)")
    out.add_argument("--image-size", help="fix the input size: SIZE or HxW (default: dynamic)")
    out.add_argument("--batch-size", type=int, help="fix the batch (default: dynamic)")
    out.add_argument(
        "--fixed-shape",
        action="store_true",
        help="batch 1 and a fixed size (--image-size, else the model's nominal size): lets "
        "XNNPACK take the whole graph",
    )
    check = parser.add_argument_group("verification")
    check.add_argument(
        "--verify-images",
        help="folder or tfds:NAME:SPLIT (default: random images; for int8, up to half held out "
        "from --representative after the --num-calibration images)",
    )
    check.add_argument(
        "--num-verify",
        type=int,
        default=DEFAULT_VERIFY_IMAGES,
        help=f"images compared, in every format (default {DEFAULT_VERIFY_IMAGES})",
    )
    check.add_argument(
        "--threads",
        type=int,
        default=VERIFY_DEFAULTS.threads,
        help=f"interpreter threads (default {VERIFY_DEFAULTS.threads})",
    )
    check.add_argument(
        "--runs", type=int, default=VERIFY_DEFAULTS.runs, help="timed runs for the median latency"
    )
    check.add_argument(
        "--tolerance",
        type=float,
        help="largest relative error of the outputs, ||export - keras|| / ||keras - its mean over "
        "classes|| (default per format/mode: " + _defaults("max_relative_error") + ")",
    )
    check.add_argument(
        "--min-top1",
        type=float,
        help="classifiers: minimum top-1 agreement (0-1; default per format/mode: "
        + _defaults("min_top1")
        + ")",
    )
    check.add_argument(
        "--min-pixel-agreement",
        type=float,
        help="segmenters: minimum fraction of pixels whose class matches Keras (default per "
        "format/mode: " + _defaults("min_pixel_agreement") + ")",
    )
    parser.set_defaults(func=run)


def _defaults(bound: str) -> str:
    """The default of `bound` (a `Bounds` field) per format and mode, for a flag's help."""
    return ", ".join(f"{fmt} {mode} {getattr(b, bound):g}" for (fmt, mode), b in DEFAULT_BOUNDS.items())


def _add_openvino_flags(group: Any) -> None:
    group.add_argument(
        "--openvino-precision",
        choices=OPENVINO_PRECISIONS,
        help="OpenVINO only: float32 (default), float16 (float16 weights, float32 compute) or "
        "bfloat16 (verified and timed with OpenVINO's bfloat16 inference precision)",
    )
    group.add_argument(
        "--onnx-opset", type=int, help=f"ONNX only: the opset of the file (default {DEFAULT_OPSET})"
    )


def check_args(args: argparse.Namespace) -> None:
    """Every argument problem that needs no model or TensorFlow, before anything is written."""
    if (args.model is None) == (args.variant is None):
        raise ValueError("give either a model file (positional MODEL) or --variant, not both.")
    if args.model is not None:
        path = Path(args.model)
        if not path.exists():
            raise FileNotFoundError(f"model file {args.model!r} not found: it does not exist.")
        if path.is_dir() or path.suffix.lower() not in KERAS_SUFFIXES:
            raise ValueError(
                f"{args.model!r} is not a Keras model file: expected a .keras (or .h5) file saved "
                "with model.save(); for a preset use --variant."
            )
        check_model_file(path)
        for flag in ("weights", "classes"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag} only applies with --variant, not to a model file.")
        if args.features_only:
            raise ValueError("--features-only only applies with --variant, not to a model file.")
    if args.format != "tflite" and (
        args.quantize != "none" or args.int8_io or args.strict_int8 or args.representative
    ):
        raise ValueError("quantization options apply to --format tflite only.")
    if args.openvino_precision is not None and args.format != "openvino":
        raise ValueError("--openvino-precision applies to --format openvino only.")
    if args.onnx_opset is not None and args.format != "onnx":
        raise ValueError("--onnx-opset applies to --format onnx only.")
    if args.format == "onnx":
        try:
            require_onnx("keras-pvt export --format onnx")
        except ImportError as error:  # refused in one line before any work, like a bad flag
            raise ValueError(str(error)) from None
    if args.min_pixel_agreement is not None and not 0 <= args.min_pixel_agreement <= 1:
        raise ValueError(f"--min-pixel-agreement must be between 0 and 1, got {args.min_pixel_agreement}.")
    if args.tolerance is not None and not args.tolerance >= 0:
        raise ValueError(f"--tolerance (the largest relative error) must be >= 0, got {args.tolerance}.")
    for flag in ("num_calibration", "num_verify", "threads", "runs", "batch_size", "onnx_opset"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer, got {value}.")
    if args.fixed_shape and args.batch_size not in (None, 1):
        raise ValueError("--fixed-shape means batch 1; drop --batch-size or --fixed-shape.")
    check_outputs(args)
    if args.format == "tflite":
        check_quantize(args.quantize, args.representative, args.int8_io, args.strict_int8)


def check_model_file(path: Path) -> None:
    """Refuse an empty or corrupt model file before Keras reports it as "File not found"."""
    if path.stat().st_size == 0:
        raise ValueError(f"model file {str(path)!r} is empty (0 bytes); save the model again.")
    keras_file = path.suffix.lower() == ".keras"
    if not (KERAS_MODEL if keras_file else KERAS_WEIGHTS).recognise(path):  # zip or HDF5 signature
        kind = "a .keras zip archive with config.json" if keras_file else "an HDF5 file"
        raise ValueError(
            f"model file {str(path)!r} is corrupt: it is not {kind} (truncated or damaged). "
            "Save the model again with model.save()."
        )


def check_outputs(args: argparse.Namespace) -> None:
    """--output and its JSON report: nothing but a previous export is replaced, with --overwrite."""
    from keras_pvt.export.report import report_path

    given = (args.model, args.weights, args.representative, args.verify_images)
    inputs = [path for path in given if path and Path(path).exists()]  # not 'imagenet', 'tfds:...'
    if args.format == "openvino":
        check_openvino_output(args.output, overwrite=args.overwrite, inputs=inputs)
    elif args.format == "onnx":
        check_onnx_output(args.output, overwrite=args.overwrite, inputs=inputs)
    else:
        kind = TFLITE if args.format == "tflite" else SAVED_MODEL
        check_output(args.output, kind, overwrite=args.overwrite, inputs=inputs)
    check_output(report_path(args.output), EXPORT_REPORT, overwrite=args.overwrite, inputs=inputs)


def load_model(args: argparse.Namespace) -> Any:
    """The model to export: the .keras file (its config within the sanity limits, rebuilt with
    safe_mode), or the preset built with --weights."""
    import keras_pvt  # registers the layers for deserialisation
    from keras_pvt.checkpoints import load_keras_model

    if args.variant is not None:
        return keras_pvt.PVT_V2(
            args.variant,
            weights=args.weights,
            classes=args.classes,
            features_only=args.features_only,
        )
    try:
        return load_keras_model(args.model)
    except Exception as error:  # Keras raises many types for a corrupt/foreign file
        cause = _innermost(error)  # Keras wraps a layer's own refusal in a generic TypeError
        reason = str(cause).splitlines()[0] if str(cause) else ""
        raise ValueError(
            f"cannot load {args.model!r} as a Keras model ({type(cause).__name__}: {reason})."
        ) from error


def _innermost(error: BaseException) -> BaseException:
    """The first exception of the chain that led to `error` (its cause or context, recursively)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def nominal_size(model: Any, args: argparse.Namespace) -> tuple[int, int] | None:
    """The size for --fixed-shape: --image-size, else the model's built or nominal size."""
    from keras_pvt.export import parse_image_size

    size = parse_image_size(args.image_size)
    if size is not None or not args.fixed_shape:
        return size
    height, width = model.inputs[0].shape[1:3]
    if height is not None and width is not None:
        return int(height), int(width)
    if args.variant is not None:
        from keras_pvt.presets import get_config

        return parse_image_size(get_config(args.variant).img_size)
    return 224, 224


def run(args: argparse.Namespace) -> int:
    check_args(args)
    from keras_pvt import export
    from keras_pvt.layers.size_check import check_model_image_size

    if args.variant is not None and args.weights is None:
        print("note: --variant without --weights exports randomly initialised weights.")
    model = load_model(args)
    size = nominal_size(model, args)
    check_model_image_size(model, size)  # before any tracing, with the model's own message
    batch = 1 if args.fixed_shape else args.batch_size
    try:
        report, details = _export(args, model, size, batch, export)
    except export.VerificationError as error:
        print(export.format_report(error.report))
        print(f"keras-pvt export: verification failed, nothing written: {error}", file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    print(export.format_report(report))
    json_path = export.write_report_json(details, export.report_path(args.output), overwrite=args.overwrite)
    print(f"wrote {args.output} and {json_path}")
    return 0


def _verify_images(args: argparse.Namespace, model: Any, size: Any, export: Any) -> Any:
    if args.verify_images is None:
        return None
    return export.load_images(
        args.verify_images, image_size=size, limit=args.num_verify, data_dir=args.data_dir, model=model
    )


def _export(args: argparse.Namespace, model: Any, size: Any, batch: Any, export: Any) -> Any:
    images = _verify_images(args, model, size, export)
    # What every format's export takes alike: the file's shape, its verification bounds, overwrite.
    common = {
        "image_size": size,
        "batch_size": batch,
        "runs": args.runs,
        "tolerance": args.tolerance,
        "min_top1": args.min_top1,
        "min_pixel_agreement": args.min_pixel_agreement,
        "overwrite": args.overwrite,
    }
    runtime = {"verify_images": images, "threads": args.threads, **common}
    if args.format == "tflite":
        result = export.convert_to_tflite(
            model,
            args.output,
            quantize=args.quantize,
            representative_data=args.representative,
            num_calibration=args.num_calibration,
            int8_io=args.int8_io,
            strict_int8=args.strict_int8,
            data_dir=args.data_dir,
            num_verify=args.num_verify,
            **runtime,
        )
        return result.verification, result
    if args.format == "onnx":
        result = export.export_onnx(
            model,
            args.output,
            opset=args.onnx_opset or DEFAULT_OPSET,
            num_images=args.num_verify,
            **runtime,
        )
        return result.verification, result
    if args.format == "openvino":
        result = export.export_openvino(
            model,
            args.output,
            precision=args.openvino_precision or "float32",
            num_images=args.num_verify,
            **runtime,
        )
        return result.verification, result
    report = export.export_and_verify_saved_model(
        model, args.output, images, num_images=args.num_verify, **common
    )
    return report, report
