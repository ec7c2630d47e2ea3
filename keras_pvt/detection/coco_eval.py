"""COCO box mAP with pycocotools: AP (IoU 0.50:0.95), AP50, AP75 and AP of small, medium and large
objects, of a detector on an evaluation dataset or of detections already in COCO's result format.

pycocotools is an optional dependency (``pip install keras-pvt[detection]``), imported only here;
without it `keras_pvt._requires.PycocotoolsRequiredError` (an ImportError) names the extra.
A metric pycocotools cannot define (no ground-truth object of that size) is NaN, not its -1.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from keras_pvt._requires import require_pycocotools

METRIC_NAMES = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")  # COCOeval.stats[0:6]


def _pycocotools() -> tuple[Any, Any]:
    require_pycocotools("COCO mAP")  # `PycocotoolsRequiredError` naming the extra
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval


def coco_metrics(ground_truth: dict, detections: Sequence[dict]) -> dict[str, float]:
    """pycocotools' bbox evaluation of `detections` (``{"image_id", "category_id", "bbox": [x, y,
    w, h], "score"}``) against `ground_truth` (a COCO instances dict), on the ground truth's images."""
    COCO, COCOeval = _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {key: ground_truth[key] for key in ("images", "annotations", "categories")}
        truth.createIndex()
        if detections:
            results = truth.loadRes([dict(d) for d in detections])
        else:  # loadRes cannot take an empty list; no detection scores 0 where there are objects
            results = COCO()
            results.dataset = {
                "images": truth.dataset["images"],
                "categories": truth.dataset["categories"],
                "annotations": [],
            }
            results.createIndex()
        evaluation = COCOeval(truth, results, "bbox")
        evaluation.params.imgIds = sorted(truth.getImgIds())
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = np.asarray(evaluation.stats[: len(METRIC_NAMES)], np.float64)
    return {name: (float(value) if value >= 0 else float("nan")) for name, value in zip(METRIC_NAMES, stats)}


def detections_to_coco(predictions: dict, info: dict, category_ids: Sequence[int]) -> list[dict]:
    """One batch of a detector's padded output (``boxes`` (B, D, 4) xyxy input pixels,
    ``confidence``, ``labels``, ``num_detections``) as COCO results in each image's original pixels
    (`info` of `det_augment.eval_transform`: boxes divided by ``scale``, clipped to ``original_size``)."""
    boxes = np.asarray(predictions["boxes"], np.float64)
    scores = np.asarray(predictions["confidence"], np.float64)
    labels = np.asarray(predictions["labels"]).astype(np.int64)
    counts = np.asarray(predictions["num_detections"]).astype(np.int64).reshape(-1)
    scale = np.asarray(info["scale"], np.float64)  # (B, 2): h'/h, w'/w
    original = np.asarray(info["original_size"], np.float64)
    image_ids = np.asarray(info["image_id"]).astype(np.int64).reshape(-1)
    results = []
    for b, count in enumerate(counts):
        factor = np.array([scale[b, 1], scale[b, 0], scale[b, 1], scale[b, 0]])
        limit = np.array([original[b, 1], original[b, 0], original[b, 1], original[b, 0]])
        image_boxes = np.clip(boxes[b, :count] / factor, 0.0, limit)
        for (x1, y1, x2, y2), score, label in zip(image_boxes, scores[b, :count], labels[b, :count]):
            results.append(
                {
                    "image_id": int(image_ids[b]),
                    "category_id": int(category_ids[label]),
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "score": float(score),
                }
            )
    return results


def ground_truth_from_batches(
    batches: Iterable[dict], class_names: Sequence[str], category_ids: Sequence[int]
) -> dict:
    """A COCO instances dict from evaluation `info` batches (their ``gt_*`` rows, labels -1 padded)."""
    images, annotations = [], []
    for info in batches:
        labels = np.asarray(info["gt_labels"])
        for b, image_id in enumerate(np.asarray(info["image_id"]).reshape(-1)):
            height, width = (int(v) for v in np.asarray(info["original_size"])[b])
            images.append({"id": int(image_id), "height": height, "width": width})
            for row in np.flatnonzero(labels[b] >= 0):
                x1, y1, x2, y2 = (float(v) for v in np.asarray(info["gt_boxes"])[b, row])
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": int(image_id),
                        "category_id": int(category_ids[labels[b, row]]),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": float(np.asarray(info["gt_area"])[b, row]),
                        "iscrowd": int(np.asarray(info["gt_is_crowd"])[b, row]),
                    }
                )
    categories = [{"id": int(cid), "name": str(name)} for cid, name in zip(category_ids, class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def evaluate_coco(
    model: Any,
    data: Any,
    category_ids: Sequence[int],
    class_names: Sequence[str] | None = None,
    ground_truth: dict | None = None,
) -> dict[str, float]:
    """COCO mAP of `model` (its ``predict`` returns padded boxes, as `RetinaNet`'s) on `data`,
    batches of ``(images, info)`` (`DetectionPipelines.val`).

    `ground_truth`: a COCO dict (a COCO folder's validation json, `DetectionPipelines.val_ground_truth`);
    None builds it from the batches' ``gt_*`` rows.
    """
    detections, infos = [], []
    for images, info in data:
        info = {key: np.asarray(value) for key, value in info.items()}
        predictions = model.predict(images, verbose=0)
        detections.extend(detections_to_coco(predictions, info, category_ids))
        infos.append(info)
    if not infos:
        raise ValueError("The evaluation dataset is empty.")
    if ground_truth is None:
        names = class_names if class_names is not None else [str(c) for c in category_ids]
        ground_truth = ground_truth_from_batches(infos, names, category_ids)
    else:  # only the evaluated images (a partial pass, e.g. validation[:100])
        seen = {int(i) for info in infos for i in np.asarray(info["image_id"]).reshape(-1)}
        ground_truth = {
            **ground_truth,
            "images": [image for image in ground_truth["images"] if image["id"] in seen],
            "annotations": [ann for ann in ground_truth["annotations"] if ann["image_id"] in seen],
        }
    return coco_metrics(ground_truth, detections)
