"""The steps of `keras-pvt demo --task detection`: train a small RetinaNet on the embedded
`keras_pvt_det_shapes` dataset, report held-out COCO AP and AP50 against a trivial baseline that
looks at no image (per class, its mean box size at the image centre), export a SavedModel, the whole
detector as a float32 `.tflite` (NMS included) and the raw head outputs as a mixed-int8 `.tflite`
(decoded and NMS'd in float beside the interpreter), and tabulate each format's held-out AP, AP50,
size and latency."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from keras_pvt.cli.demo_common import DEMO_ARCH, demo_pipelines, report, start_demo, step
from keras_pvt.config import PVTV2Config
from keras_pvt.data import DetectionPipelines, det_shapes_config, make_detection_pipelines
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.detection.coco_eval import coco_metrics, detections_to_coco, ground_truth_from_batches
from keras_pvt.detection.postprocess import SCORE_THRESHOLD
from keras_pvt.export.compare import markdown_table, size_text
from keras_pvt.export.detections import detection_agreement
from keras_pvt.training.callbacks import TimeBudget
from keras_pvt.training.detection import DetectionTrainResult, train_detection
from keras_pvt.training.detection_recipe import (
    FROM_SCRATCH_LR,
    FROM_SCRATCH_WARMUP_STEPS,
    DetectionRecipe,
)

DEFAULTS = {
    "output": "demo_output_detection",
    "image_size": 128,
    "epochs": 12,
    "batch_size": 16,
    "train_size": 800,
    "test_size": 100,
    "time_budget": 5.0,
}
# A light neck and head for 2 CPU cores (the paper's: 256 channels, 4 convs per branch).
DEMO_HEAD = {"fpn_channels": 64, "head_channels": 64, "stacked_convs": 2}
# From scratch, so well above the paper's fine-tuning rate (1e-4 per 16 images), with a short warmup.
DEMO_RECIPE = DetectionRecipe(base_lr=FROM_SCRATCH_LR, warmup_steps=FROM_SCRATCH_WARMUP_STEPS)
BASELINE = "per class, a box of its mean test-split size at the image centre, on every test image"
CALIBRATION_IMAGES = 64
EVAL_BATCH = 20
LATENCY_RUNS = 10


@dataclasses.dataclass
class DetectionFormatResult:
    """One row of a detector's comparison: held-out COCO AP and AP50, the detection agreement with
    the Keras model on the same images (`keras_pvt.export.detections`), size, latency (batch 1,
    post-processing included)."""

    format: str
    path: str | None
    size_bytes: int
    ap: float
    ap50: float
    latency_ms: float
    agreement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run(args: argparse.Namespace) -> int:
    """The whole detection demo; `args` as `keras-pvt demo` parses them, defaults filled in."""
    output, data_dir = start_demo(args)
    start = time.perf_counter()
    dataset = f"{DET_DATASET_NAME}/{det_shapes_config(args.image_size, args.train_size, args.test_size).name}"
    pipes = demo_pipelines(make_detection_pipelines, args, dataset, data_dir)
    result = _train(args, pipes, output)
    train_seconds = time.perf_counter() - start
    step("3/4 evaluate on the held-out test split (never seen in training or model selection)")
    test = _test_batches(args, dataset, data_dir)
    truth = ground_truth_from_batches([info for _, info in test], pipes.class_names, pipes.category_ids)
    baseline = coco_metrics(truth, centred_mean_boxes(truth))
    step("4/4 export SavedModel + TFLite (float32 with NMS, mixed int8 of the raw outputs) and score each")
    rows = export_and_score(result, test, truth, _calibration(pipes), args, output)
    summary = {
        "task": "detection",
        "dataset": dataset,
        "classes": result.class_names,
        "image_size": args.image_size,
        "parameters": result.model.count_params(),
        "epochs_run": result.epochs_run,
        "best_val_ap": result.best_val_ap,
        "test_images": len(truth["images"]),
        "test_ap": rows[0].ap,
        "test_ap50": rows[0].ap50,
        "baseline": BASELINE,
        "baseline_ap": baseline["ap"],
        "baseline_ap50": baseline["ap50"],
        "formats": [row.to_dict() for row in rows],
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    scores = (
        f"held-out test COCO AP: {100 * summary['test_ap']:.1f}, AP50 {100 * summary['test_ap50']:.1f} "
        f"on {summary['test_images']} images ({len(summary['classes'])} classes); baseline ({BASELINE}): "
        f"AP {100 * baseline['ap']:.1f}, AP50 {100 * baseline['ap50']:.1f}"
    )
    title = "keras-pvt detection demo summary"
    model = "RetinaNet on a small PVT-v2"
    report(output, summary, format_detection_table(rows), title=title, model=model, scores=scores)
    return 0


def _train(args: argparse.Namespace, pipes: DetectionPipelines, output: str) -> DetectionTrainResult:
    step(
        f"2/4 train: RetinaNet on a small PVT-v2 at {args.image_size}px, {args.epochs} epochs "
        f"(budget {args.time_budget:g} min)"
    )
    return train_detection(
        PVTV2Config(**DEMO_ARCH, img_size=args.image_size),
        dataset=pipes,
        recipe=DEMO_RECIPE,
        output=os.path.join(output, "run"),
        epochs=args.epochs,
        drop_path_rate=0.0,
        resume=False,
        overwrite=True,  # a rerun retrains: the folder is the demo's own (prepare_output)
        callbacks=[TimeBudget(args.time_budget * 60)],
        verbose=2,
        **DEMO_HEAD,
    )


def _test_batches(args: argparse.Namespace, dataset: str, data_dir: str) -> list[tuple[np.ndarray, dict]]:
    """The test split's ``(images, info)`` batches as arrays (the evaluation format of `evaluate_coco`)."""
    pipes = make_detection_pipelines(
        dataset,
        image_size=args.image_size,
        batch_size=min(EVAL_BATCH, args.train_size),
        data_dir=data_dir,
        retinanet_targets=False,
    )  # its validation split is the dataset's test split
    return list(pipes.val.as_numpy_iterator())


def _calibration(pipes: DetectionPipelines) -> np.ndarray:
    """Training images (the validation part held out of train) to calibrate int8."""
    images = [
        batch for batch, _ in pipes.val.take(-(-CALIBRATION_IMAGES // pipes.batch_size)).as_numpy_iterator()
    ]
    return np.concatenate(images)[:CALIBRATION_IMAGES]


def centred_mean_boxes(ground_truth: dict) -> list[dict]:
    """The baseline's detections: on every image, for each class, one box of that class's mean size
    in `ground_truth` at the image centre (a size prior, no look at any image)."""
    sizes: dict[int, list[list[float]]] = {}
    for annotation in ground_truth["annotations"]:
        sizes.setdefault(annotation["category_id"], []).append(annotation["bbox"][2:])
    means = {category: np.mean(boxes, axis=0) for category, boxes in sizes.items()}
    return [
        {
            "image_id": image["id"],
            "category_id": category,
            "bbox": [
                (image["width"] - width) / 2,
                (image["height"] - height) / 2,
                float(width),
                float(height),
            ],
            "score": 1.0,
        }
        for image in ground_truth["images"]
        for category, (width, height) in means.items()
    ]


class _Predictor:
    """``predict(images, verbose=0) -> padded detections``, what `evaluate_coco` calls, of a function."""

    def __init__(self, function: Callable[[np.ndarray], dict[str, Any]]) -> None:
        self.function = function

    def predict(self, images: np.ndarray, verbose: int = 0) -> dict[str, np.ndarray]:
        return {
            key: np.asarray(value) for key, value in self.function(np.asarray(images, np.float32)).items()
        }


def export_and_score(
    result: DetectionTrainResult,
    test: Sequence[tuple[np.ndarray, dict]],
    truth: dict,
    calibration: np.ndarray,
    args: argparse.Namespace,
    output: str,
) -> list[DetectionFormatResult]:
    """The rows (Keras first): the detector and its exports under ``output/export``, each scored on
    the held-out `test` batches against `truth` and by its detection agreement with the Keras
    model's detections there, its latency timed on one test image through the same call. The
    SavedModel and the float32 file are verified on the test images as they are written (a broken
    one raises). Exports replace only previous demo exports."""
    import keras

    from keras_pvt.export._files import size_on_disk
    from keras_pvt.export.verify import median_ms

    keras.utils.set_random_seed(0)
    folder = os.path.join(output, "export")
    os.makedirs(folder, exist_ok=True)
    one = test[0][0][:1]
    ids = [c["id"] for c in truth["categories"]]
    images = np.concatenate([batch for batch, _ in test])
    rows, keras_detections = [], None
    for name, path, predictor in _formats(result, folder, calibration, args, images):
        outputs = [_numpy(predictor.predict(batch)) for batch, _ in test]  # one pass, scored twice
        found = [d for out, (_, info) in zip(outputs, test) for d in detections_to_coco(out, info, ids)]
        metrics = coco_metrics(truth, found)
        latency = median_ms(lambda: predictor.predict(one), LATENCY_RUNS)  # noqa: B023 (called now)
        detections = {key: np.concatenate([out[key] for out in outputs]) for key in outputs[0]}
        agreement = None
        if keras_detections is None:
            keras_detections = detections
        else:
            agreement = detection_agreement(keras_detections, detections, SCORE_THRESHOLD, 1.0)[0].agreement
        size = size_on_disk(path)
        rows.append(
            DetectionFormatResult(name, path, size, metrics["ap"], metrics["ap50"], latency, agreement)
        )
    return rows


def _numpy(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """A predictor's padded detections as arrays."""
    return {key: np.asarray(value) for key, value in outputs.items()}


def _formats(
    result: DetectionTrainResult,
    folder: str,
    calibration: np.ndarray,
    args: argparse.Namespace,
    images: np.ndarray,
) -> Iterator[tuple[str, str, _Predictor]]:
    """(format, path, predictor) of the Keras detector, then of each export, written as it is
    reached; the SavedModel and the float32 file verified on `images` (held-out test images)."""
    import tensorflow as tf

    from keras_pvt.detection.model import DETECTIONS_NAME, raw_model
    from keras_pvt.export import (
        SIGNATURE_KEY,
        TFLiteRunner,
        convert_to_tflite,
        export_and_verify_saved_model,
    )

    detector, size = result.model, args.image_size
    serve = tf.function(lambda x: detector(x, training=False), autograph=False)
    yield "keras", result.best_model_path, _Predictor(lambda x: serve(tf.constant(x)))

    path = os.path.join(folder, "saved_model")
    export_and_verify_saved_model(detector, path, images, image_size=size, overwrite=True)
    signature = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    yield "saved_model", path, _Predictor(lambda x: signature(images=tf.constant(x)))

    path = os.path.join(folder, "detector_float32.tflite")
    options = {"verify_images": images, "threads": args.threads}
    convert_to_tflite(detector, path, image_size=size, batch_size=1, overwrite=True, **options)
    yield "tflite_float", path, _Predictor(TFLiteRunner(path, args.threads))

    path = os.path.join(folder, "raw_int8.tflite")
    options = {"quantize": "int8", "representative_data": calibration, "num_calibration": len(calibration)}
    convert_to_tflite(
        raw_model(detector), path, image_size=size, batch_size=1, verify=False, overwrite=True, **options
    )
    raw = TFLiteRunner(path, args.threads)
    layer = detector.get_layer(DETECTIONS_NAME)
    post = type(layer).from_config(layer.get_config())  # the detector's own post-processing, in float
    decode = tf.function(lambda images, cls, box: post([images, cls, box]), autograph=False)

    def int8_detections(images: np.ndarray) -> dict[str, Any]:
        out = raw(images)  # the head's raw outputs, dequantised
        return decode(tf.constant(images), tf.constant(out["cls_logits"]), tf.constant(out["box_deltas"]))

    yield "tflite_int8_raw", path, _Predictor(int8_detections)


def format_detection_table(rows: Sequence[DetectionFormatResult]) -> str:
    """A Markdown table of a detector's comparison."""
    header = ("format", "size", "AP", "AP50", "agreement with Keras", "latency (batch 1, with NMS)")
    return markdown_table(
        header,
        [
            (
                row.format,
                size_text(row.size_bytes),
                f"{100 * row.ap:.1f}",
                f"{100 * row.ap50:.1f}",
                "-" if row.agreement is None else f"{100 * row.agreement:.1f}%",
                f"{row.latency_ms:.2f} ms",
            )
            for row in rows
        ],
    )
