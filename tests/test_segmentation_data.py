"""Segmentation data: the embedded `keras_pvt_seg_shapes` builder, joint augmentation, label
mapping, image/mask folders with their errors, tfds names offline, and the batched pipelines."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pvt import data
from keras_pvt.data import seg_augment, seg_folder, seg_labels, sources
from keras_pvt.images import IMAGENET_MEAN, IMAGENET_STD

EMBEDDED = "keras_pvt_seg_shapes/32px_16_6"
PALETTE = np.array([[20, 20, 20], [230, 40, 40], [40, 230, 40], [40, 40, 230], [230, 230, 40]], np.uint8)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _denormalize(image: np.ndarray) -> np.ndarray:
    return (image * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)) * 255.0


def _blocky_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels in 16x16-pixel blocks, the image the palette colour of each pixel's label."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, len(PALETTE), (-(-height // 16), -(-width // 16)))
    labels = np.kron(blocks, np.ones((16, 16), int))[:height, :width].astype(np.uint8)
    return PALETTE[labels], labels


def test_render_is_deterministic_with_valid_masks():
    image, mask = data.render_segmentation_example(64, 0, 3)
    again, mask_again = data.render_segmentation_example(64, 0, 3)
    other, _ = data.render_segmentation_example(64, 1, 3)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(mask, mask_again)
    assert not np.array_equal(image, other)
    masks = np.stack([data.render_segmentation_example(48, 0, i)[1] for i in range(40)])
    assert set(np.unique(masks)) == set(range(len(data.SEG_CLASS_NAMES)))  # every class, nothing else
    assert 0.6 < (masks == 0).mean() < 0.95  # mostly background, but shapes are not specks
    per_image = [len(np.unique(m)) - 1 for m in masks]
    assert min(per_image) >= 1 and max(per_image) >= 3  # several shapes per image
    # the mask marks the shape's pixels: their colour differs from the background's
    image, mask = data.render_segmentation_example(64, 0, 5)
    inside, outside = image[mask > 0].mean(axis=0), image[mask == 0].mean(axis=0)
    assert np.linalg.norm(inside - outside) > 20


def test_tfds_builder_offline_any_resolution(tfds_dir):
    loaded = tfds.load(EMBEDDED, data_dir=tfds_dir)
    for split, count in (("train", 16), ("test", 6)):
        examples = list(loaded[split].as_numpy_iterator())
        assert len(examples) == count
        for example in examples:
            assert example["image"].shape == (32, 32, 3)
            assert example["segmentation_mask"].shape == (32, 32, 1)
            assert example["segmentation_mask"].max() < len(data.SEG_CLASS_NAMES)
    stored = {(e["image"].tobytes(), e["segmentation_mask"].tobytes()) for e in examples}
    rendered = {
        (image.tobytes(), mask[..., None].tobytes())
        for image, mask in (data.render_segmentation_example(32, 1, i) for i in range(6))
    }
    assert stored == rendered  # PNG is lossless: the stored test split is the renderer's output
    builder = tfds.builder("keras_pvt_seg_shapes", data_dir=tfds_dir)
    assert builder.builder_config.name == "128px"
    assert builder.info.features["segmentation_mask"].names == list(data.SEG_CLASS_NAMES)
    assert data.seg_shapes_config(96) is data.seg_shapes_config(96, 1000, 200)
    assert data.seg_shapes_config(96, 10, 5).name == "96px_10_5"
    assert data.shapes_config(96).name == "96px"  # the classification configs are unchanged
    with pytest.raises(ValueError, match="image_size >= 32"):
        data.seg_shapes_config(16)


def _aligned(image: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of non-ignored pixels whose colour is their label's palette colour."""
    valid = labels != seg_labels.IGNORE_LABEL
    distance = np.linalg.norm(_denormalize(image[valid]) - PALETTE[labels[valid]], axis=-1)
    return float(np.mean(distance < 30))


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_joint_augmentation_keeps_image_and_mask_aligned(size):
    image, labels = _blocky_pair(96, 128)
    shapes = set()
    for seed in range(6):
        out_image, out_labels = seg_augment.train_augment(
            tf.constant(image), tf.constant(labels), size, tf.constant([seed, 1]), photometric=False
        )
        out_image, out_labels = out_image.numpy(), out_labels.numpy()
        assert out_image.shape == (*size, 3) and out_labels.shape == size and out_labels.dtype == np.int32
        assert set(np.unique(out_labels)) <= {*range(len(PALETTE)), seg_labels.IGNORE_LABEL}
        assert _aligned(out_image, out_labels) > 0.85  # all but the interpolated block borders
        assert _aligned(out_image[:, ::-1], out_labels) < 0.5  # the check sees a one-sided flip
        shapes.add(int((out_labels != seg_labels.IGNORE_LABEL).sum()))
    assert len(shapes) > 1  # the random rescale changed the valid area between seeds


def test_padding_is_ignored_and_zero():
    image, labels = _blocky_pair(40, 48)
    out_image, out_labels = seg_augment.train_augment(
        tf.constant(image), tf.constant(labels), (64, 64), tf.constant([3, 4]), scale_range=(0.5, 0.5)
    )
    out_image, out_labels = out_image.numpy(), out_labels.numpy()
    # shorter side 40 -> 0.5 * 64 = 32: a 32x38 image at the top left, the rest padding
    assert (out_labels[32:] == 255).all() and (out_labels[:, 38:] == 255).all()
    assert (out_labels[:32, :38] != 255).all()
    np.testing.assert_array_equal(out_image[32:], 0.0)  # 0 after normalisation: the mean colour


def test_photometric_distortion_changes_the_image_only():
    image, labels = _blocky_pair(64, 64)
    seed = tf.constant([7, 8])
    plain = seg_augment.train_augment(
        tf.constant(image), tf.constant(labels), (64, 64), seed, photometric=False
    )
    changed = [
        seg_augment.train_augment(tf.constant(image), tf.constant(labels), (64, 64), tf.constant([s, 8]))
        for s in range(7, 11)
    ]
    np.testing.assert_array_equal(changed[0][1].numpy(), plain[1].numpy())
    assert any(np.abs(c[0].numpy() - p).max() > 0.1 for c, p in zip(changed, [plain[0].numpy()] * 4))
    again = seg_augment.train_augment(tf.constant(image), tf.constant(labels), (64, 64), seed)
    np.testing.assert_array_equal(again[0].numpy(), changed[0][0].numpy())  # seeded: repeatable
    pixels = seg_augment.photometric_distortion(tf.constant(image), seed).numpy()
    assert pixels.min() >= 0 and pixels.max() <= 255


def test_eval_resize_fits_and_pads_deterministically():
    image, labels = _blocky_pair(48, 96)
    _, out_labels = seg_augment.eval_resize(tf.constant(image), tf.constant(labels), (64, 64))
    assert (out_labels.numpy()[32:] == 255).all() and (out_labels.numpy()[:32] != 255).all()
    rows, cols = (np.floor((np.arange(n) + 0.5) * 1.5).astype(int) for n in (32, 64))
    np.testing.assert_array_equal(out_labels.numpy()[:32], labels[rows][:, cols])  # nearest, half-pixel
    same, same_labels = seg_augment.eval_resize(tf.constant(image), tf.constant(labels), (48, 96))
    np.testing.assert_array_equal(same_labels.numpy(), labels)  # exactly the size: unchanged
    np.testing.assert_allclose(_denormalize(same.numpy()), image, atol=1e-3)


def test_label_lookup_and_reduce_zero_label():
    table = seg_labels.label_lookup(None, reduce_zero_label=True)
    assert (table[0], table[1], table[150], table[255]) == (255, 0, 149, 255)
    assert (seg_labels.label_lookup(None, False) == np.arange(256)).all()
    pets = seg_labels.label_lookup(seg_labels.KNOWN_MASK_DATASETS["oxford_iiit_pet"].label_map, False)
    assert (pets[1], pets[2], pets[3], pets[0]) == (1, 0, 255, 255)
    city = seg_labels.label_lookup(seg_labels.CITYSCAPES_TRAIN_IDS, False)
    assert (city[7], city[26], city[33], city[0], city[9]) == (0, 13, 18, 255, 255)
    assert seg_labels.reduced_names(("other", "bed", "door"), True) == ["bed", "door"]
    assert len(seg_labels.ADE_INSTANCE_CLASSES) == 100 and len(seg_labels.CITYSCAPES_CLASSES) == 19


def _write_pairs(root, count=10, size=(24, 32), image_dir="images", mask_dir="masks", max_label=3):
    rng = np.random.default_rng(len(str(root)))
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        labels = rng.integers(0, max_label + 1, size, dtype=np.uint8)
        labels[0, 0] = max_label  # every mask holds the largest label
        (root / image_dir / f"p{index}.png").write_bytes(tf.io.encode_png(PALETTE[labels % 5]).numpy())
        (root / mask_dir / f"p{index}.png").write_bytes(tf.io.encode_png(labels[..., None]).numpy())


@pytest.mark.slow
def test_folder_pairs_layouts_classes_and_reduce_zero_label(tmp_path):
    flat = tmp_path / "flat"
    _write_pairs(flat, count=10)
    pipes = data.make_segmentation_pipelines(str(flat), image_size=32, batch_size=3, augment=False)
    assert pipes.class_names == ["class_0", "class_1", "class_2", "class_3"]  # inferred count
    assert (pipes.train_size, pipes.val_size, pipes.steps_per_epoch) == (9, 1, 3)
    images, masks = next(iter(pipes.train))
    assert images.shape == (3, 32, 32, 3) and masks.shape == (3, 32, 32)
    again = data.make_segmentation_pipelines(str(flat), image_size=32, batch_size=3, augment=False)
    np.testing.assert_array_equal(next(iter(again.val))[1].numpy(), next(iter(pipes.val))[1].numpy())
    (flat / "classes.txt").write_text("sky\nroad\ncar\nperson\nbike\n")
    assert data.make_segmentation_pipelines(str(flat), image_size=32, batch_size=3).class_names[-1] == "bike"
    split = tmp_path / "split"
    _write_pairs(split / "train", count=4)
    _write_pairs(split / "val", count=2)
    pipes = data.make_segmentation_pipelines(str(split), image_size=32, batch_size=2)
    assert (pipes.train_size, pipes.val_size, pipes.reduce_zero_label) == (4, 2, False)
    ade = tmp_path / "ADEChallengeData2016"
    _write_pairs(ade, count=3, image_dir="images/training", mask_dir="annotations/training")
    _write_pairs(ade, count=2, image_dir="images/validation", mask_dir="annotations/validation")
    pipes = data.make_segmentation_pipelines(str(ade), image_size=(24, 32), batch_size=2, augment=False)
    assert pipes.reduce_zero_label and pipes.num_classes == 3  # labels 1..3 -> 0..2, 0 ignored
    val = data.segmentation_eval_pipeline(str(ade), "val", image_size=(24, 32), batch_size=2)
    raw = tf.io.decode_png(tf.io.read_file(str(ade / "annotations/validation/p0.png")))[..., 0].numpy()
    expected = np.where(raw == 0, 255, raw.astype(int) - 1)
    np.testing.assert_array_equal(next(iter(val))[1].numpy()[0], expected)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder of image/mask pairs"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    _write_pairs(tmp_path, count=8)
    (tmp_path / "images" / "lonely.png").write_bytes((tmp_path / "images" / "p0.png").read_bytes())
    with pytest.raises(ValueError, match=r"1 image\(s\) .* no mask .*lonely\.png"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (tmp_path / "images" / "lonely.png").unlink()
    masks = tmp_path / "masks"
    good = (masks / "p1.png").read_bytes()
    (masks / "p1.png").write_bytes(tf.io.encode_png(PALETTE[np.zeros((24, 32), int)]).numpy())
    with pytest.raises(ValueError, match=r"p1\.png \(RGB PNG\).*greyscale PNG"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    palette = bytearray(good)
    palette[25] = 3  # the IHDR colour type: indexed colour
    (masks / "p1.png").write_bytes(bytes(palette))
    with pytest.raises(ValueError, match="palette PNG: TensorFlow decodes its colours"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (masks / "p1.png").write_bytes(tf.io.encode_png(np.zeros((24, 32, 1), np.uint16)).numpy())
    with pytest.raises(ValueError, match="16-bit"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (masks / "p1.png").write_bytes(tf.io.encode_jpeg(np.zeros((24, 32, 1), np.uint8)).numpy())
    with pytest.raises(ValueError, match="not a PNG"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (masks / "p1.png").write_bytes(tf.io.encode_png(np.zeros((20, 32, 1), np.uint8)).numpy())
    with pytest.raises(ValueError, match=r"differ in size.*p1\.png \(24, 32\) vs mask \(20, 32\)"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (masks / "p1.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"(?s)1 file\(s\) .*masks/p1\.png \(truncated or corrupt\)"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (masks / "p1.png").write_bytes(good)
    jpeg = tmp_path / "images" / "p2.jpg"
    jpeg.write_bytes(tf.io.encode_jpeg(np.zeros((30, 32, 3), np.uint8)).numpy())
    (tmp_path / "images" / "p2.png").unlink()
    with pytest.raises(ValueError, match=r"p2\.jpg \(30, 32\) vs mask \(24, 32\)"):  # JPEG header read
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    jpeg.write_bytes(tf.io.encode_jpeg(np.zeros((24, 32, 3), np.uint8)).numpy())
    (tmp_path / "classes.txt").write_text("only\n")
    with pytest.raises(ValueError, match="at least two"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32)
    (tmp_path / "classes.txt").write_text("a\nb\n")  # the masks hold labels up to 3
    with pytest.raises(
        ValueError, match=r"8 mask\(s\) hold labels >= 2, .*classes\.txt.*p0\.png \(label 3\)"
    ):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32, batch_size=2)
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    with pytest.raises(ValueError, match="ignore_label 1 is one of the 4 class labels"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32, ignore_label=1)
    with pytest.raises(ValueError, match="larger than the 7 training images"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32, batch_size=8)
    assert seg_folder.image_height_width(jpeg) == (24, 32)


def test_tfds_names_fail_fast_offline_and_need_a_mask(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="downloading is disabled"):
        data.make_segmentation_pipelines("scene_parse150", data_dir=str(tmp_path), download=False)
    probed = []
    monkeypatch.setattr(sources, "_reachable", lambda host: probed.append(host) or False)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"cannot be reached.*keras_pvt_seg_shapes"):
        data.make_segmentation_pipelines("oxford_iiit_pet", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10
    assert probed and not any(tmp_path.glob("downloads/*"))
    with pytest.raises(ValueError, match="no per-pixel mask feature"):
        data.make_segmentation_pipelines("mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"Unknown tensorflow-datasets name.*scene_parse150"):
        data.make_segmentation_pipelines("no_such_dataset_xyz", data_dir=str(tmp_path))


@pytest.mark.slow
def test_pipelines_shapes_dtypes_and_determinism(tfds_dir):
    def build(**options):
        defaults = {"image_size": (32, 48), "batch_size": 4, "data_dir": tfds_dir}
        return data.make_segmentation_pipelines(EMBEDDED, **{**defaults, **options})

    pipes = build()
    assert (pipes.num_classes, pipes.train_size, pipes.val_size, pipes.steps_per_epoch) == (7, 16, 6, 4)
    assert (pipes.height, pipes.width, pipes.image_size, pipes.ignore_label) == (32, 48, (32, 48), 255)
    assert pipes.class_names == list(data.SEG_CLASS_NAMES) and not pipes.reduce_zero_label
    train = list(pipes.train)
    assert len(train) == 4
    images, masks = train[0]
    assert images.shape == (4, 32, 48, 3) and images.dtype == tf.float32
    assert masks.shape == (4, 32, 48) and masks.dtype == tf.int32
    assert set(np.unique(masks.numpy())) <= {*range(7), 255}
    np.testing.assert_array_equal(next(iter(build().train))[0].numpy(), images.numpy())  # seeded
    assert not np.array_equal(next(iter(pipes.train))[0].numpy(), images.numpy())  # new epoch, new draws
    assert [len(b[1]) for b in pipes.val] == [4, 2]
    evaluated = data.segmentation_eval_pipeline(
        EMBEDDED, image_size=(32, 48), batch_size=4, data_dir=tfds_dir
    )
    for (a, a_masks), (b, b_masks) in zip(pipes.val, evaluated):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a_masks.numpy(), b_masks.numpy())
    shifted = build(ignore_label=-1, image_size=32, scale_range=(0.5, 0.5))
    assert shifted.image_size == 32
    assert (next(iter(shifted.train))[1].numpy()[:, 16:] == -1).all()  # padding carries the ignore label


def test_folder_masks_are_decoded_once_before_training_and_checked_per_file_after(tmp_path):
    _write_pairs(tmp_path, count=6, max_label=2)
    mask = tmp_path / "masks" / "p4.png"
    damaged = bytearray(mask.read_bytes())
    damaged[60] ^= 0xFF  # inside the compressed data: the ends of the file still look whole
    mask.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"1 mask\(s\) cannot be decoded: \S*masks/p4\.png \(.*PNG"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32, batch_size=2)
    mask.write_bytes(tf.io.encode_png(np.full((24, 32, 1), 255, np.uint8)).numpy())  # all ignored
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    pipes = data.make_segmentation_pipelines(str(tmp_path), image_size=32, batch_size=2, shuffle=False)
    mask.write_bytes(tf.io.encode_png(np.full((24, 32, 1), 9, np.uint8)).numpy())  # changed since
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"\[Bad segmentation mask\] \[\S*masks/p4\.png\] .*\[9\]"
    ):
        list(pipes.train)
    with pytest.raises(ValueError, match=r"1 mask\(s\) hold labels >= 3, .*p4\.png \(label 9\)"):
        data.make_segmentation_pipelines(str(tmp_path), image_size=32, batch_size=2)
    ade = tmp_path / "ADEChallengeData2016"  # reduce_zero_label: the stored value 4 is label 3
    _write_pairs(ade, count=3, image_dir="images/training", mask_dir="annotations/training", max_label=4)
    _write_pairs(ade, count=2, image_dir="images/validation", mask_dir="annotations/validation")
    (ade / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match=r"hold labels >= 3, .* after reduce_zero_label .*\(label 3\)"):
        data.make_segmentation_pipelines(str(ade), image_size=32, batch_size=2)
