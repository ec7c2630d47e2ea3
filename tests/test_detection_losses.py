"""RetinaNet's training losses, the max-IoU assigner and the target encoding against mmdet's own
(`tests/fixtures/detection_loss_reference.npz`, made by `make_detection_loss_reference.py`), in a
graph as `model.fit` runs them, and their refusals."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt.data.det_targets import encode_targets, valid_anchors
from keras_pvt.detection.anchors import anchor_boxes
from keras_pvt.detection.assigner import IGNORED, NEGATIVE
from keras_pvt.detection.losses import (
    RetinaNetBoxLoss,
    RetinaNetFocalLoss,
    average_factor,
)

FIXTURE = Path(__file__).parent / "fixtures" / "detection_loss_reference.npz"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(FIXTURE))


def _our_labels(mmdet_labels: np.ndarray, weights: np.ndarray, num_classes: int) -> np.ndarray:
    """mmdet's (labels with num_classes = background, label weights 0 = ignored) in our convention."""
    labels = np.where(mmdet_labels == num_classes, NEGATIVE, mmdet_labels)
    return np.where(weights == 0, IGNORED, labels).astype(np.int32)


def test_targets_of_a_batch_without_boxes():
    anchors = anchor_boxes(64, 64)
    targets = encode_targets(
        anchors, np.zeros((2, 0, 4), np.float32), np.zeros((2, 0), np.int32), [[64, 64], [40, 30]]
    )
    labels = np.asarray(targets["cls_logits"])
    assert set(np.unique(labels[0])) == {NEGATIVE} and set(np.unique(labels[1])) == {NEGATIVE, IGNORED}
    np.testing.assert_array_equal(np.asarray(targets["box_deltas"])[..., :4], 0.0)
    loss = float(RetinaNetBoxLoss()(targets["box_deltas"], np.ones((2, len(anchors), 4), np.float32)))
    assert loss == 0.0  # no positive anchor: nothing to regress


def test_targets_and_losses_match_mmdet_retinahead(ref):
    height, width = (int(v) for v in ref["head_batch_shape"])
    anchors = anchor_boxes(height, width)
    np.testing.assert_array_equal(anchors, ref["head_anchors"])  # H5's anchors, bit for bit
    np.testing.assert_array_equal(
        np.asarray(valid_anchors(anchors, ref["head_image_shapes"])), ref["head_valid"]
    )
    targets = encode_targets(anchors, ref["head_gt_boxes"], ref["head_gt_labels"], ref["head_image_shapes"])
    num_classes = ref["head_cls_logits"].shape[-1]
    expected = _our_labels(ref["head_labels"], ref["head_label_weights"], num_classes)
    labels = np.asarray(targets["cls_logits"])
    np.testing.assert_array_equal(labels, expected)
    assert (labels >= 0).sum() > 5 and (labels == IGNORED).sum() > 100  # both kinds exercised
    positive = ref["head_box_weights"][..., 0] > 0
    boxes = np.asarray(targets["box_deltas"])
    np.testing.assert_allclose(
        boxes[..., :4][positive], ref["head_box_targets"][positive], atol=2e-6, rtol=1e-5
    )
    np.testing.assert_array_equal(boxes[..., 4], labels)
    assert float(average_factor(labels)) == ref["head_avg_factor"]
    loss_cls = float(RetinaNetFocalLoss()(targets["cls_logits"], ref["head_cls_logits"]))
    loss_box = float(RetinaNetBoxLoss()(targets["box_deltas"], ref["head_box_deltas"]))
    np.testing.assert_allclose(loss_cls, ref["head_loss_cls"], rtol=1e-5)
    np.testing.assert_allclose(loss_box, ref["head_loss_bbox"], rtol=1e-5)


def test_losses_in_a_graph_equal_eager(ref):
    labels = _our_labels(ref["head_labels"], ref["head_label_weights"], ref["head_cls_logits"].shape[-1])
    box_targets = np.concatenate([ref["head_box_targets"], labels[..., None].astype(np.float32)], -1)
    focal, box = RetinaNetFocalLoss(), RetinaNetBoxLoss()

    @tf.function(jit_compile=False)
    def traced(labels, logits, targets, deltas):
        return focal(labels, logits), box(targets, deltas)

    graph = traced(labels, ref["head_cls_logits"], box_targets, ref["head_box_deltas"])
    np.testing.assert_allclose(float(graph[0]), ref["head_loss_cls"], rtol=1e-5)
    np.testing.assert_allclose(float(graph[1]), ref["head_loss_bbox"], rtol=1e-5)


def test_losses_drive_model_fit_and_serialize():
    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 40, (30, 2)).astype(np.float32)
    anchors = np.concatenate([anchors, anchors + 12], 1)
    boxes = anchors[None, [1, 5]] + 1.0
    targets = encode_targets(anchors, np.repeat(boxes, 4, 0), np.array([[0, 2]] * 4), np.full((4, 2), 64))
    inputs = keras.Input((8,))
    outputs = {
        "cls_logits": keras.layers.Reshape((30, 3), name="cls_logits")(keras.layers.Dense(90)(inputs)),
        "box_deltas": keras.layers.Reshape((30, 4), name="box_deltas")(keras.layers.Dense(120)(inputs)),
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss={"cls_logits": RetinaNetFocalLoss(), "box_deltas": RetinaNetBoxLoss()},
    )
    x = rng.normal(size=(4, 8)).astype(np.float32)
    y = {key: np.asarray(value) for key, value in targets.items()}
    history = model.fit(x, y, batch_size=4, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    for loss in (RetinaNetFocalLoss(gamma=1.5, alpha=0.3), RetinaNetBoxLoss()):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(again) is type(loss) and again.get_config() == loss.get_config()


def test_box_loss_refuses_targets_without_labels():
    with pytest.raises(ValueError, match=r"deltas and the anchor's label"):
        RetinaNetBoxLoss()(np.zeros((1, 3, 4), np.float32), np.zeros((1, 3, 4), np.float32))
