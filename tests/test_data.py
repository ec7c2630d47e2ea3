"""Input pipelines: the embedded offline tfds builder, image folders, preprocessing, clear errors."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pvt import data
from keras_pvt.data import sources
from keras_pvt.images import preprocess_input


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_render_is_deterministic_and_labelled():
    image, label = data.render_example(48, 0, 7)
    again, label_again = data.render_example(48, 0, 7)
    other, _ = data.render_example(48, 1, 7)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert label == label_again and 0 <= label < len(data.CLASS_NAMES)
    np.testing.assert_array_equal(image, again)
    assert not np.array_equal(image, other)
    labels = {data.render_example(32, 0, i)[1] for i in range(60)}
    assert labels == set(range(len(data.CLASS_NAMES)))


@pytest.mark.parametrize("name", data.CLASS_NAMES)
def test_shape_masks_are_distinct_and_inside(name):
    mask = data.shapes.shape_mask(name, 64, np.array([32.0, 32.0]), 20.0, 0.3)
    assert 40 < mask.sum() < np.pi * 20**2 + 40
    assert not mask[:5].any() and not mask[-5:].any()  # stays within its radius
    circle = data.shapes.shape_mask("circle", 64, np.array([32.0, 32.0]), 20.0, 0.3)
    if name != "circle":
        assert (mask != circle).sum() > 40


def test_tfds_load_offline_any_resolution_and_deterministic(tfds_dir, tmp_path):
    name = "keras_pvt_shapes/40px_24_12"
    first = tfds.load(name, data_dir=tfds_dir, as_supervised=True)
    second = tfds.load(name, data_dir=str(tmp_path), as_supervised=True)
    for split, count in (("train", 24), ("test", 12)):
        a = list(first[split].as_numpy_iterator())
        b = list(second[split].as_numpy_iterator())
        assert len(a) == count
        for (image, label), (image_b, label_b) in zip(a, b):
            assert image.shape == (40, 40, 3) and image.dtype == np.uint8
            assert 0 <= label < 6 and label == label_b
            np.testing.assert_array_equal(image, image_b)
    info = tfds.builder(name, data_dir=tfds_dir).info
    assert info.features["label"].names == list(data.CLASS_NAMES)
    # the stored test split is exactly the renderer's output (PNG is lossless), in some order
    stored = {(image.tobytes(), int(label)) for image, label in a}
    rendered = {(im.tobytes(), lab) for im, lab in (data.render_example(40, 1, i) for i in range(12))}
    assert stored == rendered


def test_named_configs_and_default():
    builder = tfds.builder("keras_pvt_shapes", data_dir="/nonexistent-not-created")
    assert builder.builder_config.image_size == 64
    assert data.shapes_config(64) is data.shapes_config(64, 3000, 600)
    with pytest.raises(ValueError, match="image_size >= 16"):
        data.shapes_config(8)


def test_pipelines_shapes_resize_and_normalisation(tfds_dir):
    pipes = data.make_pipelines("keras_pvt_shapes/40px_24_12", image_size=56, batch_size=8, data_dir=tfds_dir)
    assert (pipes.train_size, pipes.val_size, pipes.num_classes) == (24, 12, 6)
    assert pipes.steps_per_epoch == 3
    train = list(pipes.train)
    assert len(train) == 3  # partial batches dropped
    images, labels = train[0]
    assert images.shape == (8, 56, 56, 3) and images.dtype == tf.float32
    assert labels.shape == (8,)
    val = list(pipes.val)
    assert [len(b[1]) for b in val] == [8, 4]  # evaluation keeps every image
    raw = np.stack(
        [
            d[0]
            for d in tfds.load(
                "keras_pvt_shapes/40px_24_12", split="test", data_dir=tfds_dir, as_supervised=True
            ).as_numpy_iterator()
        ]
    )
    same_size = data.eval_transform(tf.constant(raw[0]), 40, crop_pct=1.0)
    np.testing.assert_allclose(same_size.numpy(), preprocess_input(raw[0].astype("float32")), atol=1e-4)
    assert float(tf.reduce_min(val[0][0])) < -1.0  # normalised, not [0, 1]


def test_train_transform_seeded_crop_and_flip():
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (50, 70, 3)), tf.uint8)
    seed = tf.constant([3, 4])
    a = data.train_transform(image, 32, seed=seed)
    b = data.train_transform(image, 32, seed=seed)
    c = data.train_transform(image, 32, seed=tf.constant([5, 6]))
    assert a.shape == (32, 32, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    grey = data.train_transform(tf.zeros((20, 20, 1), tf.uint8), 16, seed=seed)
    assert grey.shape == (16, 16, 3)


def _write_folder(root, classes=("cat", "dog"), per_class=6, split="train", size=24):
    rng = np.random.default_rng(1)
    for label in classes:
        os.makedirs(root / split / label, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size, size + 4, 3), dtype=np.uint8)
            png = tf.io.encode_png(pixels).numpy()
            (root / split / label / f"{i}.png").write_bytes(png)


def test_image_folder_with_and_without_val(tmp_path):
    _write_folder(tmp_path)
    pipes = data.make_pipelines(str(tmp_path), image_size=16, batch_size=4)
    assert pipes.class_names == ["cat", "dog"]
    assert (pipes.train_size, pipes.val_size) == (11, 1)
    images, labels = next(iter(pipes.train))
    assert images.shape == (4, 16, 16, 3)
    assert set(labels.numpy()) <= {0, 1}
    _write_folder(tmp_path, per_class=2, split="val")
    pipes = data.make_pipelines(str(tmp_path), image_size=16, batch_size=4)
    assert (pipes.train_size, pipes.val_size) == (12, 4)
    assert sum(len(b[1]) for b in pipes.val) == 4


def test_clear_errors(tmp_path):
    _write_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="at least two"):
        data.make_pipelines(str(tmp_path / "one"), image_size=16, batch_size=2)
    _write_folder(tmp_path / "two")
    with pytest.raises(ValueError, match="larger than the 11 training images"):
        data.make_pipelines(str(tmp_path / "two"), image_size=16, batch_size=64)
    (tmp_path / "two" / "train" / "cat" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"broken\.jpg"):
        data.make_pipelines(str(tmp_path / "two"), image_size=16, batch_size=2)
    with pytest.raises(FileNotFoundError, match="no 'train' sub-folder"):
        data.make_pipelines(str(tmp_path / "two" / "train"), image_size=16)
    with pytest.raises(ValueError, match="Unknown tensorflow-datasets name"):
        data.make_pipelines("no_such_dataset_xyz", data_dir=str(tmp_path))


def test_catalogue_dataset_fails_fast_offline(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="downloading is disabled"):
        data.make_pipelines("tf_flowers", data_dir=str(tmp_path), download=False)
    probed = []
    monkeypatch.setattr(sources, "_reachable", lambda host: probed.append(host) or False)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot be reached"):
        data.make_pipelines("tf_flowers", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10
    assert probed and not any(tmp_path.glob("downloads/*"))
