"""Deployment exports of keras-pvt models: SavedModel, TFLite (LiteRT), OpenVINO IR and ONNX, verified.

Public API (stable):
    export_saved_model(model, path, *, image_size=None, batch_size=None, overwrite=False) -> str
    export_and_verify_saved_model(model, path, images=None, *, image_size, batch_size, ...,
                                  overwrite=False) -> VerificationReport
    verify_saved_model(path, model, images, *, runs, tolerance, min_top1) -> VerificationReport
    convert_to_tflite(model, output_path, *,
                      quantize="none"|"float16"|"dynamic"|"int8"|"int8-full",
                      representative_data=None, image_size=None, batch_size=None, int8_io=False,
                      verify=True, threads=2, ..., overwrite=False)
        -> ConversionResult (with .verification)
    verify_tflite(tflite_path, model, images, *, threads=2, runs=10, ...) -> VerificationReport
        (a segmenter, `keras_pvt.segmentation.is_segmenter`, is compared per pixel instead of by
        top-1: `report.dense` holds the pixel agreement, the mIoU vs Keras and, with `masks=`
        ground truth, both mIoUs; `min_pixel_agreement` fails a file below it)
    convert_to_openvino_model(model, *, image_size=None, batch_size=None, kernel_table=None)
        -> openvino.Model (in memory; needs the `openvino` extra)
    export_openvino(model, output_path (NAME.xml, + NAME.bin), *, precision="float32"|"float16"|
                    "bfloat16", image_size=None, batch_size=None, verify=True, ..., overwrite=False)
        -> OpenVINOExportResult (with .verification); verify_openvino(xml_path, model, images, ...)
    export_onnx(model, output_path (NAME.onnx), *, image_size=None, batch_size=None, opset=17,
                verify=True, ..., overwrite=False) -> ONNXExportResult (with .verification),
        verified on ONNX Runtime (the `onnx` extra: tf2onnx, onnx, onnxruntime);
        convert_to_onnx_model(model, ...) -> onnx.ModelProto; verify_onnx(onnx_path, model, images, ...)
    load_images(source, *, image_size, limit, preprocess, model) -> float32 NHWC array
    Bounds, DEFAULT_BOUNDS, default_bounds(format, mode): what verification holds each export to
        (largest relative error, smallest top-1 / pixel agreement; `keras_pvt.export.bounds`);
        every verifying function takes them as `tolerance`, `min_top1`, `min_pixel_agreement`
        (None = the mode's default). A report's `status` is OK, INCONCLUSIVE or FAILED.
    format_report(report) -> str; write_report_json(report, path, *, overwrite=False);
        report_path(output) -> Path
    TFLiteRunner(tflite, threads) (named-tensor access to a .tflite), op_histogram(tflite),
    SIGNATURE_KEY (the signature every export serves)

Outputs are written beside and renamed into place. An existing output path is replaced only if it
holds a previous export of the same kind and ``overwrite=True``; anything else raises
`OutputRefusedError` (a `FileExistsError`) and is left untouched.

This package is TensorFlow-only; the TFLite interpreter comes from `ai-edge-litert` (extra `export`),
imported when a `.tflite` file is run.
"""

from keras_pvt._requires import require_tensorflow

require_tensorflow("keras_pvt.export")  # one clear ImportError where TensorFlow is absent

from keras_pvt._safe_write import OutputRefusedError
from keras_pvt.export.bounds import DEFAULT_BOUNDS, Bounds, default_bounds
from keras_pvt.export.errors import ExportError, UnsupportedOpsError, VerificationError
from keras_pvt.export.images import load_images
from keras_pvt.export.onnx import ONNXExportResult, convert_to_onnx_model, export_onnx
from keras_pvt.export.onnx_run import verify_onnx
from keras_pvt.export.openvino import (
    OPENVINO_PRECISIONS,
    OpenVINOExportResult,
    convert_to_openvino_model,
    export_openvino,
)
from keras_pvt.export.openvino_run import verify_openvino
from keras_pvt.export.report import format_report, report_path, write_report_json
from keras_pvt.export.saved_model import export_and_verify_saved_model, export_saved_model
from keras_pvt.export.signature import SIGNATURE_KEY
from keras_pvt.export.tflite import QUANTIZE_MODES, ConversionResult, convert_to_tflite
from keras_pvt.export.verify import (
    TFLiteRunner,
    VerificationReport,
    op_histogram,
    verify_saved_model,
    verify_tflite,
)

# Helpers of the CLI and the export comparison, importable from here as before, not part of the API.
from keras_pvt.export.verify import median_ms as median_ms
from keras_pvt.images import parse_image_size as parse_image_size

__all__ = [
    "DEFAULT_BOUNDS",
    "OPENVINO_PRECISIONS",
    "QUANTIZE_MODES",
    "SIGNATURE_KEY",
    "Bounds",
    "ConversionResult",
    "ExportError",
    "ONNXExportResult",
    "OpenVINOExportResult",
    "OutputRefusedError",
    "TFLiteRunner",
    "UnsupportedOpsError",
    "VerificationError",
    "VerificationReport",
    "convert_to_onnx_model",
    "convert_to_openvino_model",
    "convert_to_tflite",
    "default_bounds",
    "export_and_verify_saved_model",
    "export_onnx",
    "export_openvino",
    "export_saved_model",
    "format_report",
    "load_images",
    "op_histogram",
    "report_path",
    "verify_onnx",
    "verify_openvino",
    "verify_saved_model",
    "verify_tflite",
    "write_report_json",
]
