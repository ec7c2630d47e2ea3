"""A keras-pvt model as the `image_encoder` of keras-hub's RetinaNet (the `hub` extra).

keras-hub's `RetinaNetBackbone` reads `image_encoder.inputs` and `image_encoder.pyramid_outputs`
("P2" ... "P5"), which every model `PVT_V2` builds carries. The detector is built as
docs/detection.md ("With keras-hub's RetinaNet") shows, on a tiny PVT-v2.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras_pvt
from keras_pvt.detection import anchor_boxes, feature_sizes

from helpers import tiny_config

keras_hub = pytest.importorskip("keras_hub")

# keras-hub's FPN upsamples by 2 with no cropping: both sides a multiple of 32 (the last stage's
# stride). Non-square, so a swapped height and width shows.
HEIGHT, WIDTH = 96, 64
NUM_CLASSES = 3
ANCHORS_PER_LOCATION = 9
STRIDES = {"P3": 8, "P4": 16, "P5": 32}
WIDTHS = dict(zip(("P2", "P3", "P4", "P5"), tiny_config().embed_dims, strict=True))


def _images(batch: int = 2, seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).uniform(0, 255, (batch, HEIGHT, WIDTH, 3)).astype("float32")
    return keras_pvt.preprocess_input(pixels)


def _targets() -> dict[str, np.ndarray]:
    """Two images' boxes (xyxy pixels) and labels, padded with -1 as keras-hub expects."""
    boxes = np.array(
        [[[4, 8, 40, 60], [20, 30, 62, 94]], [[0, 0, 63, 95], [-1, -1, -1, -1]]], dtype="float32"
    )
    labels = np.array([[0, 2], [1, -1]], dtype="float32")
    return {"boxes": boxes, "labels": labels}


@pytest.fixture(scope="module")
def detector():
    # As docs/detection.md, with a tiny config and no weights.
    encoder = keras_pvt.PVT_V2(tiny_config(), features_only=True)
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=7, use_p5=True, image_shape=(HEIGHT, WIDTH, 3)
    )
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=NUM_CLASSES, bounding_box_format="xyxy"
    )
    detector.compile()
    return detector


def test_every_model_carries_keras_hubs_pyramid_outputs():
    for model in (keras_pvt.PVT_V2(tiny_config()), keras_pvt.PVT_V2(tiny_config(), features_only=True)):
        assert list(model.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
        expected = keras_pvt.pyramid_outputs(model)
        assert all(model.pyramid_outputs[key] is expected[key] for key in expected)
        assert [model.pyramid_outputs[key].shape[-1] for key in expected] == list(WIDTHS.values())


def test_the_fpn_takes_our_stage_maps_at_strides_8_to_32(detector):
    encoder = detector.backbone.image_encoder
    extractor = detector.backbone.get_layer("backbone")  # keras-hub's P3-P5 view of the encoder
    images = _images()
    ours = encoder(images)
    fed = extractor([images])
    assert sorted(fed) == ["P3", "P4", "P5"]
    for level, stride in STRIDES.items():
        assert tuple(fed[level].shape) == (2, HEIGHT // stride, WIDTH // stride, WIDTHS[level])
        stage = f"stage{int(level[1]) - 1}"
        np.testing.assert_array_equal(np.asarray(fed[level]), np.asarray(ours[stage]))
        lateral = detector.backbone.feature_pyramid.lateral_conv_layers[level]
        assert tuple(lateral.kernel.shape) == (1, 1, WIDTHS[level], 256)


def test_raw_outputs_cover_the_same_anchor_grid_as_keras_pvt_retinanet(detector):
    raw = detector(_images())
    # Levels P3-P7 have our own RetinaNet's sizes (ceil(size / stride)), 9 anchors per location.
    anchors = ANCHORS_PER_LOCATION * sum(h * w for h, w in feature_sizes(HEIGHT, WIDTH))
    assert anchors == 9 * (12 * 8 + 6 * 4 + 3 * 2 + 2 * 1 + 1 * 1)
    assert tuple(raw["bbox_regression"].shape) == (2, anchors, 4)
    assert tuple(raw["cls_logits"].shape) == (2, anchors, NUM_CLASSES)
    keras_hub_anchors = detector.anchor_generator(_images())
    assert sum(int(level.shape[0]) for level in keras_hub_anchors.values()) == anchors


def test_keras_hubs_anchors_are_mmdets_rounded_to_pixels(detector):
    # docs/detection.md: same order and centres; corners rounded (mmdet's are float32).
    size = 128  # a multiple of every stride: keras-hub's strides are then 2**level, as mmdet's
    hub = np.concatenate(
        [np.asarray(level) for level in detector.anchor_generator(np.zeros((1, size, size, 3))).values()]
    )
    ours = anchor_boxes(size, size)
    assert hub.shape == ours.shape
    np.testing.assert_array_equal(hub, np.round(hub))
    assert 0.5 < np.abs(hub - ours).max() <= 1.0


def test_predict_returns_keras_hubs_detections(detector):
    out = detector.predict(_images(), verbose=0)
    assert {key: out[key].shape for key in out} == {
        "boxes": (2, 100, 4),
        "confidence": (2, 100),
        "labels": (2, 100),
        "num_detections": (2,),
    }
    for image in range(2):
        found = int(out["num_detections"][image])
        assert 0 <= found <= 100
        assert np.all((out["confidence"][image, :found] > 0) & (out["confidence"][image, :found] <= 1))
        assert np.all((out["labels"][image, :found] >= 0) & (out["labels"][image, :found] < NUM_CLASSES))
        assert np.all(out["labels"][image, found:] == -1)


@pytest.mark.slow  # tracing keras-hub's train step and our training kernels: ~20 s on 2 cores
def test_fit_trains_the_backbone_with_keras_hubs_losses(detector):
    stage = detector.backbone.image_encoder.get_layer("stage1")
    before = [weight.numpy().copy() for weight in stage.trainable_weights]
    history = detector.fit(_images(), _targets(), batch_size=2, epochs=1, shuffle=False, verbose=0)
    logs = {key: values[-1] for key, values in history.history.items()}
    assert set(logs) >= {"loss", "bbox_regression_loss", "cls_logits_loss"}
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0
    assert logs["loss"] == pytest.approx(logs["bbox_regression_loss"] + logs["cls_logits_loss"], rel=1e-5)
    after = [weight.numpy() for weight in stage.trainable_weights]
    assert any(not np.array_equal(old, new) for old, new in zip(before, after, strict=True))
