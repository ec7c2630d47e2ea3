"""Detection-level verification of exported detectors: matches by label and IoU, order-free, near
ties excused; a healthy file passes, a file from slightly changed weights fails, an untrained
detector (no detections) is inconclusive."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_pvt.export.detections import (
    DETECTION_OUTPUTS,
    MATCH_IOU,
    as_xyxy,
    detection_agreement,
    drop_swapped_pairs,
    match,
)

from helpers import tiny_config

SLOTS = 4


def detections(rows: list[tuple[list[float], float, int]], slots: int = SLOTS) -> dict[str, np.ndarray]:
    """One image's padded outputs from (box xyxy, score, label) rows, best first."""
    boxes, scores, labels = np.full((1, slots, 4), -1.0), np.full((1, slots), -1.0), np.full((1, slots), -1)
    for k, (box, score, label) in enumerate(rows):
        boxes[0, k], scores[0, k], labels[0, k] = box, score, label
    return {"boxes": boxes, "confidence": scores, "labels": labels, "num_detections": np.array([len(rows)])}


A = ([10.0, 10.0, 50.0, 50.0], 0.9, 1)
B = ([60.0, 20.0, 90.0, 70.0], 0.6, 2)
C = ([0.0, 0.0, 20.0, 30.0], 0.3, 1)


def agreement(reference, exported, threshold=0.05, cap=1e-4):
    return detection_agreement(detections(reference), detections(exported), threshold, cap)[0]


def test_the_same_detections_in_another_order_agree_fully() -> None:
    result = agreement([A, B, C], [B, A, C])
    assert result.agreement == 1.0 and result.matched == 3 and result.near_ties == 0
    assert result.mean_iou == pytest.approx(1.0)


def test_a_moved_box_or_another_label_is_a_disagreement() -> None:
    moved = ([14.0, 10.0, 54.0, 50.0], 0.9, 1)  # IoU 0.82 with A
    relabelled = (B[0], B[1], 0)
    result = agreement([A, B, C], [moved, relabelled, C])
    assert result.matched == 1 and result.agreement == pytest.approx(2 / 6)


def test_matching_takes_the_best_overlap_of_the_same_label() -> None:
    near = ([10.0, 10.0, 50.0, 51.0], 0.9, 1)  # IoU 0.975 with A
    pairs = match(tuple(np.asarray(v) for v in zip(A, C)), tuple(np.asarray(v) for v in zip(C, near)))
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 0)]
    assert all(iou >= MATCH_IOU for _, _, iou in pairs)


def test_a_detection_at_the_score_threshold_is_a_near_tie_not_a_disagreement() -> None:
    at_threshold = ([0.0, 0.0, 20.0, 30.0], 0.05 + 1e-7, 1)
    result = agreement([A, B, at_threshold], [A, B])
    assert result.near_ties == 1 and result.agreement == 1.0
    clear = ([0.0, 0.0, 20.0, 30.0], 0.2, 1)  # far from the threshold: a real miss
    assert agreement([A, B, clear], [A, B]).agreement == pytest.approx(4 / 5)


def test_the_lowest_score_of_a_full_image_is_a_near_tie() -> None:
    last = ([0.0, 60.0, 20.0, 90.0], 0.3, 3)
    other = ([70.0, 0.0, 90.0, 15.0], 0.3 - 1e-7, 0)  # swapped at the last slot
    result = agreement([A, B, C, last], [A, B, C, other])
    assert result.near_ties == 2 and result.agreement == 1.0


def test_nothing_on_either_side_cannot_judge() -> None:
    result = agreement([], [])
    assert result.agreement is None and result.keras_detections == 0


def test_swapped_pairs_are_left_out_of_the_error_figures_only_a_few() -> None:
    rows = np.zeros((200, 5))
    moved = rows.copy()
    moved[7, :4] = 3.0
    kept, _ = drop_swapped_pairs(rows, moved)
    assert len(kept) == 198 and not np.any(drop_swapped_pairs(rows, moved)[1][:, :4])
    few, out = drop_swapped_pairs(rows[:50], moved[:50])
    assert len(few) == 50 and np.any(out)


@pytest.mark.parametrize("box_format", ["yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy", "rel_xywh"])
def test_boxes_of_any_keras_format_come_back_as_xyxy(box_format) -> None:
    reference = detections([A, B, C])
    size = {"height": 100.0, "width": 100.0} if box_format.startswith("rel_") else {}
    boxes = keras.utils.bounding_boxes.convert_format(
        reference["boxes"].astype("float32"), source="xyxy", target=box_format, **size
    )
    converted = as_xyxy({**reference, "boxes": keras.ops.convert_to_numpy(boxes)}, box_format)
    scale = 100.0 if box_format.startswith("rel_") else 1.0  # relative: pixels of a 1x1 image
    np.testing.assert_allclose(converted["boxes"][0, :3] * scale, reference["boxes"][0, :3], rtol=1e-6)


def test_a_detector_with_another_box_format_is_compared_as_detections() -> None:
    from keras_pvt.detection import detector_model
    from keras_pvt.export.verify import _detection_comparison

    detector = detector_model(spread_detector(), bounding_box_format="center_yxhw")
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    reference = {key: np.asarray(value) for key, value in detector.predict(images, verbose=0).items()}
    same = _detection_comparison(detector, reference, reference, 1e-4)
    assert same.detections.agreement == 1.0 and same.detections.keras_detections == 200
    for growth, agreement in ((1.3, 0.0), (1.02, 1.0)):  # heights and widths: IoU 0.59, 0.96
        grown = {**reference, "boxes": reference["boxes"] * np.array([1, 1, growth, growth])}
        changed = _detection_comparison(detector, reference, grown, 1e-4)
        assert changed.detections.agreement == agreement
    assert changed.relative_error["boxes"] > 1e-3  # the matched boxes' sizes, 2% off


def spread_detector(scale: float = 20.0):
    """A tiny RetinaNet whose scores spread as a trained one's: larger head kernels, a neutral prior."""
    from keras_pvt.detection import RetinaNet

    keras.utils.set_random_seed(0)
    model = RetinaNet(tiny_config(), 3, fpn_channels=8, head_channels=8)
    for layer in model.layers:
        if layer.name.startswith("head") and layer.weights:
            weights = layer.get_weights()
            weights[0] *= scale
            if layer.name == "head_retina_cls":
                weights[1][:] = -2.0
            layer.set_weights(weights)
    return model


@pytest.mark.slow
def test_detector_tflite_passes_and_fails_against_slightly_changed_weights(tmp_path) -> None:
    pytest.importorskip("ai_edge_litert")
    from keras_pvt.export import convert_to_tflite
    from keras_pvt.export.verify import verify_tflite

    detector = spread_detector()
    images = np.random.default_rng(0).normal(size=(6, 64, 64, 3)).astype("float32")
    options = {"image_size": 64, "batch_size": 1, "verify_images": images}
    report = convert_to_tflite(detector, tmp_path / "d.tflite", **options).verification
    assert report.status == "OK" and report.detections.agreement == 1.0
    assert report.detections.keras_detections == 600 and set(report.relative_error) == {"boxes", "confidence"}
    changed = keras.models.clone_model(detector)
    changed.set_weights(detector.get_weights())
    layer = changed.get_layer("head_reg_conv1")
    weights = layer.get_weights()
    weights[0] *= 1.01  # one conv of the box branch 1% off: boxes move, scores do not
    layer.set_weights(weights)
    # the file checked against a model it was not made from: as a file with slightly wrong weights
    broken = verify_tflite(tmp_path / "d.tflite", changed, images, quantize="none")
    assert broken.status == "FAILED" and broken.detections.agreement < 0.99
    assert broken.relative_error["boxes"] > broken.max_relative_error
    assert any("detection agreement" in failure for failure in broken.failures)


@pytest.mark.slow
def test_an_untrained_detector_with_no_detections_is_inconclusive(tmp_path) -> None:
    from keras_pvt.detection import RetinaNet
    from keras_pvt.export import export_and_verify_saved_model

    keras.utils.set_random_seed(0)
    detector = RetinaNet(tiny_config(), 3, fpn_channels=8, head_channels=8)  # the prior: scores ~0.01
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    report = export_and_verify_saved_model(detector, tmp_path / "sm", images, image_size=64)
    assert report.status == "INCONCLUSIVE" and "detects anything" in report.inconclusive
    assert report.detections.agreement is None


@pytest.mark.slow
def test_openvino_ir_carries_the_nms_and_its_detections_agree(tmp_path) -> None:
    pytest.importorskip("openvino")
    from keras_pvt.export import export_openvino

    detector = spread_detector()
    images = np.random.default_rng(0).normal(size=(4, 64, 64, 3)).astype("float32")
    options = {"image_size": 64, "batch_size": 1, "verify_images": images}
    result = export_openvino(detector, tmp_path / "detector.xml", **options)
    assert result.model_ops.get("Loop") == 1  # the NMS, inside the IR
    report = result.verification
    assert report.status == "OK" and sorted(report.output_names) == sorted(DETECTION_OUTPUTS)
    assert report.detections.agreement == 1.0 and report.detections.keras_detections == 400
