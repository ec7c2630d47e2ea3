"""RetinaNet's losses and the max-IoU assigner against mmdet's own on every Keras backend
(`keras.ops` only): the fixture of `make_detection_loss_reference.py`, mmdet's targets as given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keras_pvt.detection.assigner import IGNORED, NEGATIVE, box_iou, max_iou_assign
from keras_pvt.detection.losses import (
    FLOAT32_EPS,
    RetinaNetBoxLoss,
    RetinaNetFocalLoss,
    average_factor,
    focal_loss_sum,
    l1_loss_sum,
)

pytestmark = pytest.mark.all_backends

FIXTURE = Path(__file__).parent / "fixtures" / "detection_loss_reference.npz"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(FIXTURE))


def _our_labels(mmdet_labels: np.ndarray, weights: np.ndarray, num_classes: int) -> np.ndarray:
    """mmdet's (labels with num_classes = background, label weights 0 = ignored) in our convention."""
    labels = np.where(mmdet_labels == num_classes, NEGATIVE, mmdet_labels)
    return np.where(weights == 0, IGNORED, labels).astype(np.int32)


def test_focal_and_l1_match_mmdet(ref):
    labels = _our_labels(ref["loss_labels"], ref["loss_weights"], ref["loss_logits"].shape[1])
    focal = float(focal_loss_sum(labels, ref["loss_logits"])) / (37.0 + FLOAT32_EPS)
    np.testing.assert_allclose(focal, ref["loss_focal"], rtol=1e-6)
    l1 = float(l1_loss_sum(labels, ref["loss_targets"], ref["loss_deltas"])) / (37.0 + FLOAT32_EPS)
    np.testing.assert_allclose(l1, ref["loss_l1"], rtol=1e-6)
    broken = np.where(labels >= 0, (labels + 1) % 5, labels)  # wrong classes: a different loss
    assert abs(float(focal_loss_sum(broken, ref["loss_logits"])) / 37.0 - ref["loss_focal"]) > 1e-2


def test_assigner_matches_mmdet_with_ties_and_low_quality_matches(ref):
    anchors, gts = ref["assign_anchors"], ref["assign_gt_boxes"]
    matched = np.asarray(
        max_iou_assign(anchors, gts[None], np.ones((1, len(gts)), bool), np.ones((1, len(anchors)), bool))
    )[0]
    gt_inds = ref["assign_gt_inds"]  # mmdet: -1 ignored, 0 negative, i + 1 box i
    expected = np.where(gt_inds > 0, gt_inds - 1, np.where(gt_inds == 0, NEGATIVE, IGNORED))
    np.testing.assert_array_equal(matched, expected)
    assert (expected == 2).any() and len(np.unique(expected[expected >= 0])) == 3  # every box matched
    assert (expected == IGNORED).any() and (expected == NEGATIVE).any()


def test_assigner_without_boxes_and_with_invalid_anchors():
    anchors = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30]], np.float32)
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    gt_valid = np.array([[True, False], [False, False]])
    anchor_valid = np.array([[False, True, True], [True, True, False]])
    matched = np.asarray(max_iou_assign(anchors, boxes, gt_valid, anchor_valid))
    # Image 0: the best anchor is invalid, so the box takes its best valid one (IoU 25/175) as a
    # low-quality match; image 1 has no box: every valid anchor is background.
    np.testing.assert_array_equal(matched, [[IGNORED, 0, NEGATIVE], [NEGATIVE, NEGATIVE, IGNORED]])
    np.testing.assert_allclose(np.asarray(box_iou(anchors[:1], anchors[1:2])), [[25 / 175]], rtol=1e-6)


def test_losses_of_mmdets_own_targets_equal_its_losses(ref):
    labels = _our_labels(ref["head_labels"], ref["head_label_weights"], ref["head_cls_logits"].shape[-1])
    box_targets = np.concatenate([ref["head_box_targets"], labels[..., None].astype(np.float32)], -1)
    assert float(average_factor(labels)) == ref["head_avg_factor"]
    loss_cls = float(RetinaNetFocalLoss()(labels, ref["head_cls_logits"]))
    loss_box = float(RetinaNetBoxLoss()(box_targets, ref["head_box_deltas"]))
    np.testing.assert_allclose(loss_cls, ref["head_loss_cls"], rtol=1e-5)
    np.testing.assert_allclose(loss_box, ref["head_loss_bbox"], rtol=1e-5)
