"""Detection data: the embedded `keras_pvt_det_shapes` builder, COCO folders with their errors,
tfds names offline, mmdet's resize/flip/pad with the boxes, and the batched pipelines."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_pvt.data import det_augment, sources
from keras_pvt.data.det_pipeline import make_detection_pipelines
from keras_pvt.data.det_shapes import DET_CLASS_NAMES, render_detection_example
from keras_pvt.data.det_sources import load_detection_source
from keras_pvt.detection.anchors import anchor_boxes
from keras_pvt.images import IMAGENET_MEAN, IMAGENET_STD

EMBEDDED = "keras_pvt_det_shapes/64px_12_4"


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _denormalize(image: np.ndarray) -> np.ndarray:
    return (image * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)) * 255.0


def test_render_is_deterministic_with_tight_boxes():
    image, boxes, labels, areas = render_detection_example(96, 0, 5)
    again = render_detection_example(96, 0, 5)
    np.testing.assert_array_equal(image, again[0])
    np.testing.assert_array_equal(boxes, again[1])
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    counts, sides = [], []
    for index in range(60):
        _, boxes, labels, areas = render_detection_example(128, 0, index)
        assert boxes.shape == (len(labels), 4) and len(areas) == len(labels)
        assert (
            (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        )
        assert ((labels >= 0) & (labels < len(DET_CLASS_NAMES))).all()
        assert (areas <= (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).all()
        counts.append(len(labels))
        sides.extend(np.sqrt(areas))
    assert max(counts) >= 3 and min(counts) >= 1
    assert min(sides) < 32 < max(sides)  # small and larger objects (at 128 px; more above)


def test_tfds_builder_offline(tfds_dir):
    source = load_detection_source(EMBEDDED, data_dir=tfds_dir)
    assert (source.train_size, source.val_size) == (12, 4)
    assert source.class_names == list(DET_CLASS_NAMES) and source.category_ids == list(range(1, 7))
    example = next(iter(source.val))
    image, boxes, labels = example["image"].numpy(), example["boxes"].numpy(), example["labels"].numpy()
    expected = render_detection_example(64, 1, int(example["image_id"]))
    np.testing.assert_array_equal(image, expected[0])
    np.testing.assert_allclose(boxes, expected[1], atol=1e-4)  # normalised and back
    np.testing.assert_array_equal(labels, expected[2])
    np.testing.assert_array_equal(example["area"].numpy(), expected[3])


def test_val_from_train_keeps_the_test_split_unseen(tfds_dir):
    source = load_detection_source(EMBEDDED, data_dir=tfds_dir, val_from_train=True)
    assert (source.train_size, source.val_size) == (11, 1)  # the last 10% of train validates
    train_ids = {int(example["image_id"]) for example in source.train}
    (example,) = list(source.val)
    assert train_ids | {int(example["image_id"])} == set(range(12))  # ids are per split: train's
    expected = render_detection_example(64, 0, int(example["image_id"]))  # drawn with train's seed
    np.testing.assert_array_equal(example["image"].numpy(), expected[0])


def test_tfds_names_fail_fast_offline_and_need_boxes(tmp_path, monkeypatch):
    probed = []
    monkeypatch.setattr(sources, "_reachable", lambda host: probed.append(host) or False)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"cannot be reached.*keras_pvt_det_shapes"):
        load_detection_source("coco/2017", data_dir=str(tmp_path))
    assert probed and time.monotonic() - started < 10
    with pytest.raises(FileNotFoundError, match="downloading is disabled"):
        load_detection_source("coco/2017", data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match="no boxes"):
        load_detection_source("keras_pvt_shapes/32px_4_2", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown tensorflow-datasets name"):
        load_detection_source("no_such_dataset_xyz", data_dir=str(tmp_path))


def test_resize_flip_pad_move_boxes_with_the_image():
    image = np.zeros((60, 100, 3), np.uint8)
    image[10:30, 20:50] = 255  # a white box at x 20..50, y 10..30
    boxes = tf.constant([[20.0, 10.0, 50.0, 30.0], [90.0, 50.0, 120.0, 70.0]])  # the second leaves the image
    resized, moved, scale = det_augment.resize_keep_ratio(tf.constant(image), boxes, (120, 160))
    assert tuple(resized.shape[:2]) == (96, 160)  # factor min(120 / 60, 160 / 100) = 1.6
    np.testing.assert_allclose(scale.numpy(), [1.6, 1.6])
    np.testing.assert_allclose(moved.numpy(), [[32, 16, 80, 48], [144, 80, 160, 96]])
    example = {
        "image": tf.constant(image),
        "boxes": boxes[:1],
        "labels": tf.constant([3]),
        "is_crowd": tf.constant([False]),
        "area": tf.constant([600.0]),
    }
    seen = set()
    for seed in range(8):
        out = det_augment.train_transform(example, (128, 160), tf.constant([seed, 1]))
        pixels = _denormalize(out["image"].numpy())
        x1, y1, x2, y2 = np.round(out["boxes"].numpy()[0]).astype(int)
        assert pixels[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].min() > 240  # the box still covers the white block
        assert pixels[:96, :160].mean() < 255 * 0.2  # mostly black elsewhere
        np.testing.assert_allclose(out["image"].numpy()[96:], 0.0)  # padding is 0 after normalisation
        assert tuple(out["image_shape"].numpy()) == (96, 160)
        seen.add(x1)
    assert seen == {32, 160 - 80}  # both flips happen
    crowd = dict(example, is_crowd=tf.constant([True]))
    assert det_augment.train_transform(crowd, (128, 160), tf.constant([0, 1]))["boxes"].shape[0] == 0


def _coco_folder(root, images=((40, 50), (48, 64), (50, 40)), annotations=None, split=True):
    """A COCO folder: coloured PNGs under images/ and instances_train.json (+ instances_val.json)."""
    (root / "images").mkdir(parents=True)
    entries = []
    for index, (height, width) in enumerate(images):
        pixels = np.full((height, width, 3), 40 * index, np.uint8)
        tf.io.write_file(str(root / "images" / f"img{index}.png"), tf.io.encode_png(pixels))
        entries.append({"id": 10 + index, "file_name": f"img{index}.png", "height": height, "width": width})
    annotations = annotations or [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [30, 20, 30, 30], "area": 300, "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 3, "bbox": [1, 1, 0.5, 8], "area": 4, "iscrowd": 0},
        {"id": 4, "image_id": 11, "category_id": 7, "bbox": [2, 2, 30, 30], "area": 900, "iscrowd": 1},
        {"id": 5, "image_id": 12, "category_id": 7, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
    ]
    categories = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]
    gt = {"images": entries, "annotations": annotations, "categories": categories}
    if not split:
        (root / "instances_all.json").write_text(json.dumps(gt))
        return
    train = {
        **gt,
        "images": entries[:2],
        "annotations": [a for a in annotations if a["image_id"] in (10, 11)],
    }
    val = {**gt, "images": entries[2:], "annotations": [a for a in annotations if a["image_id"] == 12]}
    (root / "instances_train.json").write_text(json.dumps(train))
    (root / "instances_val.json").write_text(json.dumps(val))


def test_coco_folder_examples(tmp_path):
    _coco_folder(tmp_path)
    source = load_detection_source(str(tmp_path))
    assert source.class_names == ["dog", "cat"] and source.category_ids == [3, 7]  # sorted by id
    # Image 11 (48x64) has only a sub-pixel box and a crowd box: mmdet still trains on it.
    assert (source.train_size, source.val_size) == (2, 1)
    examples = {int(e["image_id"]): e for e in source.train}
    np.testing.assert_allclose(examples[10]["boxes"].numpy(), [[5, 5, 25, 15], [30, 20, 60, 50]])
    np.testing.assert_array_equal(examples[10]["labels"].numpy(), [1, 0])
    np.testing.assert_array_equal(examples[11]["is_crowd"].numpy(), [True])  # the 0.5 px box is left out
    assert examples[10]["image"].shape == (40, 50, 3)
    assert source.val_ground_truth["images"][0]["id"] == 12


def test_coco_folder_single_json_is_split(tmp_path):
    _coco_folder(tmp_path, split=False)
    source = load_detection_source(str(tmp_path), val_fraction=0.34)
    assert source.val_size == 1 and [a["image_id"] for a in source.val_ground_truth["annotations"]] == [12]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"category_id": 99}, r"category_id not among.*\[3, 7\]"),
        ({"bbox": [5, 5, -20, 10]}, r"negative width or height.*\[x, y, width, height\]"),
        ({"bbox": [200, 200, 20, 10]}, r"wholly outside its image.*invalid_boxes='skip'"),
        ({"image_id": 99}, r"image_id not among"),
        ({"id": 2}, r"repeated annotation id"),
        ({"bbox": [1, 2, 3]}, r"missing or malformed keys.*bbox \[x, y, w, h\]"),
    ],
)
def test_coco_folder_refuses_bad_annotations(tmp_path, change, message):
    _coco_folder(tmp_path)
    path = tmp_path / "instances_train.json"
    gt = json.loads(path.read_text())
    gt["annotations"][0].update(change)
    path.write_text(json.dumps(gt))
    with pytest.raises(ValueError, match=message) as error:
        load_detection_source(str(tmp_path))
    assert "instances_train.json" in str(error.value)


def test_coco_folder_skips_outside_boxes_on_request_and_names_missing_images(tmp_path):
    _coco_folder(tmp_path)
    path = tmp_path / "instances_train.json"
    gt = json.loads(path.read_text())
    gt["annotations"][0]["bbox"] = [200, 200, 20, 10]
    path.write_text(json.dumps(gt))
    source = load_detection_source(str(tmp_path), invalid_boxes="skip")
    examples = {int(e["image_id"]): e for e in source.train}
    assert examples[10]["boxes"].shape == (1, 4)
    (tmp_path / "images" / "img1.png").unlink()
    with pytest.raises(ValueError, match=r"(?s)1 image file\(s\) named in .*instances_train.json.*img1.png"):
        load_detection_source(str(tmp_path), invalid_boxes="skip")


def test_coco_folder_refuses_wrong_image_size_and_non_coco_json(tmp_path):
    _coco_folder(tmp_path / "a")
    path = tmp_path / "a" / "instances_train.json"
    gt = json.loads(path.read_text())
    gt["images"][0]["height"] = 41
    path.write_text(json.dumps(gt))
    source = load_detection_source(str(tmp_path / "a"))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"img0.png is 40x50 pixels but its json entry says 41x50"
    ):
        list(source.train)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "instances_train.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO instances file"):
        load_detection_source(str(tmp_path / "b"))
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="No instances_"):
        load_detection_source(str(tmp_path / "c"))


def test_pipelines_with_retinanet_targets(tfds_dir):
    pipes = make_detection_pipelines(EMBEDDED, image_size=(64, 96), batch_size=3, data_dir=tfds_dir)
    images, targets = next(iter(pipes.train))
    anchors = anchor_boxes(64, 96)
    assert images.shape == (3, 64, 96, 3) and images.dtype == tf.float32
    assert targets["cls_logits"].shape == (3, len(anchors))
    assert targets["box_deltas"].shape == (3, len(anchors), 5)
    labels = targets["cls_logits"].numpy()
    assert (labels >= 0).any() and (labels == -1).any() and (labels == -2).any()
    np.testing.assert_array_equal(targets["box_deltas"].numpy()[..., 4], labels)
    val_images, info = next(iter(pipes.val))
    assert val_images.shape[1:] == (64, 96, 3)
    np.testing.assert_allclose(info["scale"].numpy(), 1.0)  # 64 px renders inside (64, 96) unscaled
    assert info["gt_boxes"].shape[-1] == 4 and (info["gt_labels"].numpy() >= -1).all()
    assert pipes.steps_per_epoch == 4 and pipes.category_ids == list(range(1, 7))
    raw = make_detection_pipelines(
        EMBEDDED, image_size=64, batch_size=2, data_dir=tfds_dir, retinanet_targets=False
    )
    images, batch = next(iter(raw.train))
    assert set(batch) == {"boxes", "labels", "image_shape"} and batch["boxes"].shape[0] == 2
    with pytest.raises(ValueError, match="no full batch"):
        make_detection_pipelines(EMBEDDED, image_size=64, batch_size=13, data_dir=tfds_dir)


def test_coco_folder_in_cocos_own_layout(tmp_path):
    """ROOT/annotations/instances_train2017.json with the images in ROOT/train2017/ (and val)."""
    _coco_folder(tmp_path / "flat")
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split, stem in (("train", "train2017"), ("val", "val2017")):
        gt = json.loads((tmp_path / "flat" / f"instances_{split}.json").read_text())
        (root / "annotations" / f"instances_{stem}.json").write_text(json.dumps(gt))
        (root / stem).mkdir()
        for image in gt["images"]:
            (tmp_path / "flat" / "images" / image["file_name"]).rename(root / stem / image["file_name"])
    source = load_detection_source(str(root))
    assert (source.train_size, source.val_size) == (2, 1)
    assert next(iter(source.val))["image"].shape == (50, 40, 3)
