"""COCO mAP with pycocotools: a hand-made case with a known AP, broken-on-purpose detections, the
mapping of padded model outputs back to original pixels, `evaluate_coco` on a pipeline and the
per-epoch callback."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_pvt.detection.callbacks import CocoEvaluation
from keras_pvt.detection.coco_eval import METRIC_NAMES, coco_metrics, detections_to_coco, evaluate_coco

pytest.importorskip("pycocotools")

GROUND_TRUTH = {
    "images": [{"id": 1, "height": 200, "width": 300}, {"id": 2, "height": 200, "width": 300}],
    "annotations": [  # two large objects (area > 96^2)
        {"id": 1, "image_id": 1, "category_id": 5, "bbox": [10, 10, 120, 100], "area": 12000, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 9, "bbox": [50, 40, 110, 110], "area": 12100, "iscrowd": 0},
    ],
    "categories": [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}],
}


def _detection(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_known_ap_from_pycocotools():
    perfect = [
        _detection(1, 5, [10, 10, 120, 100], 0.9),
        _detection(2, 9, [50, 40, 110, 110], 0.8),
    ]
    metrics = coco_metrics(GROUND_TRUTH, perfect)
    assert set(metrics) == set(METRIC_NAMES)
    for name in ("ap", "ap50", "ap75", "ap_large"):
        assert metrics[name] == pytest.approx(1.0)
    assert math.isnan(metrics["ap_small"]) and math.isnan(metrics["ap_medium"])  # no such objects
    half = [
        _detection(1, 5, [200, 150, 50, 40], 0.95),  # false positive, scored first
        _detection(1, 5, [10, 10, 120, 100], 0.9),
    ]
    # Category 5: precision 1/2 at recall 1 -> AP 0.5 at every IoU; category 9: nothing found -> 0.
    assert coco_metrics(GROUND_TRUTH, half)["ap"] == pytest.approx((0.5 + 0.0) / 2)
    shifted = [_detection(1, 5, [10, 30, 120, 100], 0.9), _detection(2, 9, [50, 40, 110, 110], 0.8)]
    # Category 5 moved down 20 px: IoU 9600 / 14400 = 2/3, a hit at IoU 0.50 ... 0.65 (4 of 10 thresholds).
    assert coco_metrics(GROUND_TRUTH, shifted)["ap"] == pytest.approx((0.4 + 1.0) / 2)


def test_wrong_labels_and_no_detections_score_zero():
    swapped = [
        _detection(1, 9, [10, 10, 120, 100], 0.9),
        _detection(2, 5, [50, 40, 110, 110], 0.8),
    ]
    assert coco_metrics(GROUND_TRUTH, swapped)["ap"] == 0.0
    assert coco_metrics(GROUND_TRUTH, [])["ap"] == 0.0


def test_detections_to_coco_maps_back_to_original_pixels():
    predictions = {
        "boxes": np.array([[[20, 10, 60, 50], [0, 0, 1, 1]], [[100, 0, 700, 90], [0, 0, 0, 0]]], np.float32),
        "confidence": np.array([[0.9, 0.1], [0.7, -1]], np.float32),
        "labels": np.array([[1, 0], [0, -1]]),
        "num_detections": np.array([2, 1]),
    }
    info = {
        "image_id": np.array([4, 8]),
        "scale": np.array([[2.0, 2.0], [0.5, 0.5]]),
        "original_size": np.array([[50, 40], [200, 1000]]),
    }
    results = detections_to_coco(predictions, info, [5, 9])
    assert len(results) == 3
    assert results[0] == {
        "image_id": 4,
        "category_id": 9,
        "bbox": [10.0, 5.0, 20.0, 20.0],
        "score": pytest.approx(0.9),
    }
    assert results[2]["bbox"] == [200.0, 0.0, 800.0, 180.0]  # 1400 clipped to the width of 1000
    assert results[2]["category_id"] == 5


class _Replay:
    """A stand-in detector whose `predict` answers each batch with prepared outputs, in order."""

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def predict(self, images, verbose=0):
        return self.outputs.pop(0)


def _absent_classes(labels):
    """Per image, its real rows relabelled with the first of the 6 classes the image does not hold."""
    absent = [min(set(range(6)) - set(row[row >= 0].tolist())) for row in labels]
    return np.where(labels >= 0, np.array(absent)[:, None], labels)


def _oracle_outputs(batches, wrong_labels=False):
    """Padded outputs that are each batch's ground truth in input pixels (an ideal detector).
    `wrong_labels`: every box labelled with a class that is not in its image (broken on purpose)."""
    outputs = []
    for _, info in batches:
        labels = np.asarray(info["gt_labels"])
        boxes = np.asarray(info["gt_boxes"]) * np.tile(np.asarray(info["scale"])[:, None, ::-1], 2)
        counts = (labels >= 0).sum(1)
        order = np.argsort(labels < 0, axis=1, kind="stable")  # real rows first
        labels = np.take_along_axis(labels, order, 1)
        outputs.append(
            {
                "boxes": np.take_along_axis(boxes, order[..., None], 1),
                "confidence": np.where(labels >= 0, 0.9, -1.0),
                "labels": _absent_classes(labels) if wrong_labels else labels,
                "num_detections": counts,
            }
        )
    return outputs


@pytest.fixture(scope="module")
def shapes_val(tmp_path_factory):
    from keras_pvt.data.det_pipeline import make_detection_pipelines

    pipes = make_detection_pipelines(
        "keras_pvt_det_shapes/64px_4_6",
        image_size=(96, 80),
        batch_size=4,
        data_dir=str(tmp_path_factory.mktemp("tfds")),
        retinanet_targets=False,
    )
    return pipes, [(images.numpy(), {k: v.numpy() for k, v in info.items()}) for images, info in pipes.val]


def test_evaluate_coco_on_a_pipeline_ideal_and_broken(shapes_val):
    pipes, batches = shapes_val
    assert batches[0][1]["scale"][0] == pytest.approx([1.25, 1.25])  # 64 px fitted into (96, 80)
    ideal = evaluate_coco(_Replay(_oracle_outputs(batches)), batches, pipes.category_ids, pipes.class_names)
    assert ideal["ap"] == pytest.approx(1.0) and ideal["ap50"] == pytest.approx(1.0)
    broken = evaluate_coco(
        _Replay(_oracle_outputs(batches, True)), batches, pipes.category_ids, pipes.class_names
    )
    assert broken["ap"] == 0.0


def test_callback_fills_the_epoch_logs(shapes_val):
    pipes, batches = shapes_val
    callback = CocoEvaluation(batches, pipes.category_ids, pipes.class_names, every=2)
    callback.set_model(_Replay(_oracle_outputs(batches)))
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert math.isnan(logs["val_ap"]) and set(logs) == {"loss", *("val_" + n for n in METRIC_NAMES)}
    callback.on_epoch_end(1, logs)
    assert logs["val_ap"] == pytest.approx(1.0) and len(callback.history) == 1
    with pytest.raises(ValueError, match="positive number of epochs"):
        CocoEvaluation(batches, pipes.category_ids, every=0)


def test_evaluate_coco_on_a_coco_folder_uses_its_json(tmp_path):
    from test_detection_data import _coco_folder

    from keras_pvt.data.det_pipeline import make_detection_pipelines

    _coco_folder(tmp_path)
    pipes = make_detection_pipelines(
        str(tmp_path), image_size=(64, 96), batch_size=1, retinanet_targets=False
    )
    batches = [(images.numpy(), {k: v.numpy() for k, v in info.items()}) for images, info in pipes.val]
    assert pipes.val_ground_truth["annotations"][0]["bbox"] == [0, 0, 10, 10]
    metrics = evaluate_coco(
        _Replay(_oracle_outputs(batches)), batches, pipes.category_ids, ground_truth=pipes.val_ground_truth
    )
    assert metrics["ap"] == pytest.approx(1.0) and metrics["ap_small"] == pytest.approx(1.0)
    assert math.isnan(metrics["ap_large"])
