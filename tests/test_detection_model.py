"""`RetinaNet`: parity with mmdetection's own RetinaNet, checkpoints, sizes, serialization, options.

The reference (tests/fixtures/det_reference.npz) is made by mmdet's FPN + RetinaHead on timm's
PVT-v2 in mmdet's RetinaNet (make_detection_reference.py) with seeded weights the tests regenerate.
Bars: raw per-level outputs max |ours - mmdet| <= 1e-4 x max |mmdet|; detections equal (same count,
labels, order; boxes and scores to round-off).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from _detection_reference import (
    SIZES,
    TOLERANCE,
    backbone_config,
    checkpoint_state,
    detection_mismatch,
    expected,
    images,
    reference,
    relative_error,
)

import keras_pvt
from keras_pvt.checkpoints.assign import CheckpointMismatchError
from keras_pvt.detection import RetinaNet, RetinaNetDetections, detector_model, is_detector, raw_model
from keras_pvt.detection.checkpoint_keys import mmdet_backbone_to_official
from keras_pvt.detection.weights import MMDET_EPSILON_WARNING

from helpers import tiny_config

CHANNELS = 16


def fixture_detector(**options) -> keras.Model:
    """The fixture's tiny RetinaNet (neck and head 16 channels, 3 classes) with its weights."""
    return RetinaNet(
        backbone_config(),
        None,
        weights=checkpoint_state(),
        fpn_channels=CHANNELS,
        head_channels=CHANNELS,
        **options,
    )


def small_detector(**options) -> keras.Model:
    return RetinaNet(tiny_config(), 4, **{"fpn_channels": 8, "head_channels": 8, **options})


@pytest.fixture(scope="module")
def mmdet_model() -> keras.Model:
    return fixture_detector()


@pytest.mark.all_backends
@pytest.mark.parametrize("case", SIZES)
def test_raw_outputs_match_mmdet_at_square_and_odd_sizes(mmdet_model: keras.Model, case: str) -> None:
    raw = raw_model(mmdet_model)(images(case))
    assert relative_error(raw["cls_logits"], expected(case, "cls_logits")) <= TOLERANCE
    assert relative_error(raw["box_deltas"], expected(case, "box_deltas")) <= TOLERANCE


@pytest.mark.all_backends
@pytest.mark.parametrize("case", SIZES)
def test_detections_equal_mmdets(mmdet_model: keras.Model, case: str) -> None:
    detections = mmdet_model.predict(images(case), verbose=0)
    assert detection_mismatch(detections, case) == []


@pytest.mark.all_backends
@pytest.mark.parametrize("case", SIZES)
def test_postprocessing_of_mmdets_raw_outputs_gives_mmdets_detections(case: str) -> None:
    layer = RetinaNetDetections()
    out = layer([images(case), expected(case, "cls_logits"), expected(case, "box_deltas")])
    assert detection_mismatch(out, case) == []


@pytest.mark.slow
def test_parity_checks_report_a_broken_model(mmdet_model: keras.Model) -> None:
    state = checkpoint_state()
    state["bbox_head.retina_reg.bias"] = state["bbox_head.retina_reg.bias"] + np.float32(0.01)
    state["neck.fpn_convs.3.conv.bias"] = state["neck.fpn_convs.3.conv.bias"] + np.float32(0.01)
    broken = RetinaNet(backbone_config(), 3, weights=state, fpn_channels=CHANNELS, head_channels=CHANNELS)
    case = SIZES[1]
    raw = raw_model(broken)(images(case))
    assert relative_error(raw["box_deltas"], expected(case, "box_deltas")) > TOLERANCE
    assert detection_mismatch(broken.predict(images(case), verbose=0), case) != []
    shuffled = mmdet_model.predict(images(case), verbose=0)
    shuffled["labels"] = np.roll(np.asarray(shuffled["labels"]), 1, axis=1)
    assert detection_mismatch(shuffled, case) != []


@pytest.mark.all_backends
@pytest.mark.slow
def test_one_model_for_every_size_and_raw_outputs_count_the_anchors() -> None:
    model = small_detector(raw_outputs=True)
    for height, width in ((64, 64), (45, 71), (33, 130)):
        out = model(np.zeros((1, height, width, 3), np.float32))
        count = keras_pvt.detection.anchor_boxes(height, width).shape[0]
        assert tuple(out["cls_logits"].shape) == (1, count, 4)
        assert tuple(out["box_deltas"].shape) == (1, count, 4)


@pytest.mark.slow
def test_predict_returns_keras_hub_style_padded_detections() -> None:
    model = small_detector()
    out = model.predict(np.random.default_rng(0).normal(size=(2, 64, 80, 3)).astype(np.float32), verbose=0)
    assert set(out) == {"boxes", "confidence", "labels", "num_detections"}
    assert out["boxes"].shape == (2, 100, 4) and out["confidence"].shape == (2, 100)
    assert out["labels"].shape == (2, 100) and out["num_detections"].shape == (2,)
    for image, count in enumerate(out["num_detections"]):
        assert np.all(out["labels"][image, count:] == -1)
        assert np.all(np.diff(out["confidence"][image, :count]) <= 0)
        boxes = out["boxes"][image, :count]
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 80) and np.all(boxes[:, 3] <= 64)


@pytest.mark.slow
def test_other_box_formats_convert_the_same_detections(mmdet_model: keras.Model) -> None:
    case = SIZES[1]
    xywh = detector_model(mmdet_model, bounding_box_format="xywh").predict(images(case), verbose=0)
    rel = detector_model(mmdet_model, bounding_box_format="rel_xyxy").predict(images(case), verbose=0)
    count = int(expected(case, "num_detections")[0])
    boxes = expected(case, "det_boxes")[0, :count]
    np.testing.assert_allclose(xywh["boxes"][0, :count, 2:], boxes[:, 2:] - boxes[:, :2], atol=2e-3)
    np.testing.assert_allclose(rel["boxes"][0, :count], boxes / np.float32([131, 97, 131, 97]), atol=2e-5)
    assert np.all(xywh["boxes"][0, count:] == -1)


def test_num_classes_comes_from_the_checkpoint_or_defaults_to_coco() -> None:
    assert fixture_detector(raw_outputs=True).get_layer("cls_logits").output.shape[-1] == 3
    model = RetinaNet(tiny_config(), None, fpn_channels=8, head_channels=8, raw_outputs=True)
    assert model.get_layer("cls_logits").output.shape[-1] == 80


def test_mismatched_checkpoints_are_listed() -> None:
    state = checkpoint_state()
    with pytest.raises(CheckpointMismatchError, match="num_classes=3"):
        RetinaNet(backbone_config(), 5, weights=state, fpn_channels=CHANNELS, head_channels=CHANNELS)
    del state["neck.lateral_convs.1.conv.weight"]
    state["bbox_head.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointMismatchError) as error:
        RetinaNet(backbone_config(), 3, weights=state, fpn_channels=CHANNELS, head_channels=CHANNELS)
    assert "neck.lateral_convs.1.conv.weight" in str(error.value)
    assert "bbox_head.extra.weight" in str(error.value)
    state = checkpoint_state()
    state["backbone.block1.0.attn.q.weight"] = state["backbone.block1.0.attn.q.weight"][:, :4]
    with pytest.raises(CheckpointMismatchError, match="backbone"):
        RetinaNet(backbone_config(), 3, weights=state, fpn_channels=CHANNELS, head_channels=CHANNELS)
    with pytest.raises(CheckpointMismatchError, match="not a checkpoint of an mmdet RetinaNet"):
        RetinaNet(backbone_config(), None, weights={"head.weight": np.zeros((3, 4), np.float32)})


def _to_mmdet_naming(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The official backbone names as mmdet's `pvt_convert` writes them (q and kv merged, 1x1 convs)."""
    import re

    out = {}
    for key, value in state.items():
        if not key.startswith("backbone."):
            out[key] = value
            continue
        name = key[len("backbone.") :]
        name = re.sub(r"^patch_embed(\d)\.proj\.", lambda m: f"layers.{int(m[1]) - 1}.0.projection.", name)
        name = re.sub(r"^patch_embed(\d)\.", lambda m: f"layers.{int(m[1]) - 1}.0.", name)
        name = re.sub(r"^norm(\d)\.", lambda m: f"layers.{int(m[1]) - 1}.2.", name)
        name = re.sub(r"^block(\d)\.(\d+)\.", lambda m: f"layers.{int(m[1]) - 1}.1.{m[2]}.", name)
        if ".attn.kv." in name:
            continue
        if ".attn.q." in name:
            value = np.concatenate([value, state[key.replace(".attn.q.", ".attn.kv.")]], axis=0)
            name = name.replace(".attn.q.", ".attn.attn.in_proj_")
        name = name.replace(".attn.proj.", ".attn.attn.out_proj.")
        if ".mlp.fc" in name and name.endswith("weight"):
            value = value.reshape(*value.shape, 1, 1)
        name = name.replace(".mlp.fc1.", ".ffn.layers.0.").replace(".mlp.dwconv.dwconv.", ".ffn.layers.1.")
        out["backbone." + name.replace(".mlp.fc2.", ".ffn.layers.4.")] = value
    return out


def test_mmdet_backbone_naming_loads_the_same_weights_with_a_warning(mmdet_model: keras.Model) -> None:
    official = checkpoint_state()
    mmdet_state = _to_mmdet_naming(official)
    backbone_keys = {
        k[len("backbone.") :]: tuple(v.shape) for k, v in mmdet_state.items() if k.startswith("backbone.")
    }
    assert backbone_keys == {k: tuple(s) for k, s in json.loads(str(reference()["mmdet_backbone_layout"]))}
    renamed = mmdet_backbone_to_official(
        {k[len("backbone.") :]: v for k, v in mmdet_state.items() if k.startswith("backbone.")}
    )
    assert set(renamed) == {k[len("backbone.") :] for k in official if k.startswith("backbone.")}
    with pytest.warns(UserWarning, match="eps 1e-6"):
        model = RetinaNet(
            backbone_config(), None, weights=mmdet_state, fpn_channels=CHANNELS, head_channels=CHANNELS
        )
    for ours, theirs in zip(model.weights, mmdet_model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    assert "1e-5" in MMDET_EPSILON_WARNING


def test_neck_and_head_parameter_count_equals_mmdet_for_b0() -> None:
    model = RetinaNet("b0", 80, raw_outputs=True)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    neck_head = model.count_params() - backbone.count_params()
    assert neck_head == int(reference()["b0_neck_head_parameters"])


def test_backbone_weights_load_like_the_classifier_builders(mmdet_model: keras.Model) -> None:
    official = {k[len("backbone.") :]: v for k, v in checkpoint_state().items() if k.startswith("backbone.")}
    model = RetinaNet(
        backbone_config(), 3, backbone_weights=official, fpn_channels=CHANNELS, head_channels=CHANNELS
    )
    ours, theirs = (
        next(layer for layer in m.layers if isinstance(layer, keras.Model)) for m in (model, mmdet_model)
    )
    for got, want in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want))


@pytest.mark.all_backends
@pytest.mark.slow
def test_keras_file_round_trip_in_safe_mode(tmp_path: Path, mmdet_model: keras.Model) -> None:
    path = tmp_path / "retinanet.keras"
    mmdet_model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    case = SIZES[1]
    assert detection_mismatch(loaded.predict(images(case), verbose=0), case) == []
    assert is_detector(loaded) and loaded.name == mmdet_model.name
    again = RetinaNet(backbone_config(), 3, weights=path, fpn_channels=CHANNELS, head_channels=CHANNELS)
    assert detection_mismatch(again.predict(images(case), verbose=0), case) == []


@pytest.mark.all_backends
def test_postprocessing_layer_config_round_trips() -> None:
    layer = RetinaNetDetections(
        score_threshold=0.3, iou_threshold=0.6, pre_nms_top_k=50, max_detections=7, bounding_box_format="yxyx"
    )
    again = RetinaNetDetections.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    for bad in (
        {"score_threshold": 1.5},
        {"iou_threshold": 0.0},
        {"max_detections": 0},
        {"bounding_box_format": "xy"},
    ):
        with pytest.raises(ValueError):
            RetinaNetDetections(**bad)


@pytest.mark.slow
def test_tensorflow_and_portable_nms_keep_the_same_boxes(mmdet_model: keras.Model) -> None:
    from keras_pvt.detection import postprocess

    case = SIZES[0]
    raw = raw_model(mmdet_model)(images(case))
    found = postprocess.candidates(raw["cls_logits"], raw["box_deltas"], 128, 128)
    shifted = postprocess.classwise_offsets(found["boxes"], found["labels"], found["valid"])
    scores = keras.ops.where(found["valid"], found["scores"], 0.0)
    tf_indices, tf_count = postprocess.nms_indices(shifted, scores, 100, 0.5)
    indices, count = postprocess._greedy_nms(shifted, scores, 100, 0.5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(count), keras.ops.convert_to_numpy(tf_count))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), keras.ops.convert_to_numpy(tf_indices))


def test_raw_and_detector_models_share_their_weights() -> None:
    model = small_detector()
    raw = raw_model(model)
    assert {v.path for v in raw.weights} == {v.path for v in model.weights}
    again = detector_model(raw, max_detections=5)
    assert again.output["boxes"].shape[1:] == (5, 4)
    assert is_detector(model) and is_detector(raw) and not is_detector(keras_pvt.PVT_V2(tiny_config()))


def test_exported_from_the_package() -> None:
    assert keras_pvt.RetinaNet is RetinaNet is keras_pvt.detection.RetinaNet


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        RetinaNet(tiny_config(), 0)
    with pytest.raises(TypeError, match="raw_outputs"):
        RetinaNet(tiny_config(), 3, raw_outputs="yes")
    with pytest.raises(FileNotFoundError, match="no such file"):
        RetinaNet(tiny_config(), 3, weights="/nonexistent/retinanet.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_detector(raw_outputs=True)
