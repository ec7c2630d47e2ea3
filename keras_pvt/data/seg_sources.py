"""Raw (image, mask) datasets for segmentation: tfds names with masks, image/mask folders, the
embedded `keras_pvt_seg_shapes`, with clear errors and the same fast offline failure as
classification (`keras_pvt.data.sources`).

Every source yields unbatched ``(uint8 image (H, W, 3), uint8 labels (H, W))`` pairs whose labels
are already mapped (`seg_labels`): ``0 .. num_classes - 1``, or 255 (ignore).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pvt.data.seg_folder import CLASSES_FILE, default_reduce_zero_label, find_pairs
from keras_pvt.data.seg_folder_labels import decoded_pair, largest_labels, refuse_labels_beyond
from keras_pvt.data.seg_labels import (
    IGNORE_LABEL,
    KNOWN_MASK_DATASETS,
    MASK_FEATURE_KEYS,
    MaskDataset,
    label_lookup,
    reduced_names,
)
from keras_pvt.data.seg_shapes import SEG_DATASET_NAME
from keras_pvt.data.sources import (
    DEFAULT_VAL_FRACTION,
    VALIDATION_SPLITS,
    DataSource,
    find_builder,
    prepare_builder,
)
from keras_pvt.segmentation.mask_checks import MASK_ERROR

ALTERNATIVES = (
    f"a tensorflow-datasets name with masks ({', '.join(sorted(KNOWN_MASK_DATASETS))}), the embedded "
    f"offline dataset {SEG_DATASET_NAME!r}, or a folder ROOT/images/*.jpg + ROOT/masks/*.png"
)


@dataclasses.dataclass
class SegmentationSource(DataSource):
    """Unbatched training and validation (image uint8 (H, W, 3), labels uint8 (H, W)) pairs, the
    class names, split sizes and whether ADE20K's zero label was reduced."""

    reduce_zero_label: bool


def load_segmentation_source(
    dataset: str = SEG_DATASET_NAME,
    *,
    data_dir: str | None = None,
    download: bool = True,
    reduce_zero_label: bool | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_from_train: bool = False,
) -> SegmentationSource:
    """A `SegmentationSource` from a tfds name or a folder of image/mask pairs (`seg_folder`).

    Validation uses the dataset's validation/test split, else (and always with `val_from_train`)
    a held-out `val_fraction` of ``train``. `reduce_zero_label` None: the dataset's default (on
    for ``scene_parse150`` and an ``ADEChallengeData2016`` folder).
    """
    if os.path.isdir(os.path.expanduser(dataset)):
        return _from_folder(dataset, reduce_zero_label, val_fraction)
    builder, spec = _mask_builder(dataset, data_dir, download)
    reduce = spec.reduce_zero_label if reduce_zero_label is None else bool(reduce_zero_label)
    splits = builder.info.splits
    if "train" not in splits:
        raise ValueError(f"Dataset {dataset!r} has no 'train' split (splits: {list(splits)}).")
    val_split = None if val_from_train else next((s for s in VALIDATION_SPLITS if s in splits), None)
    train_split = "train"
    if val_split is None:
        held_out = max(1, round(100 * val_fraction))
        train_split, val_split = f"train[:-{held_out}%]", f"train[-{held_out}%:]"
    lut = label_lookup(spec.label_map, reduce)
    train = _tfds_pairs(builder, spec, train_split, lut, shuffle_files=True)
    val = _tfds_pairs(builder, spec, val_split, lut)
    names = reduced_names(spec.class_names, reduce) if spec.class_names else _inferred_names(train)
    return SegmentationSource(
        name=dataset,
        train=checked_labels(train, len(names), dataset),
        val=checked_labels(val, len(names), dataset),
        class_names=names,
        train_size=splits[train_split].num_examples,
        val_size=splits[val_split].num_examples,
        reduce_zero_label=reduce,
    )


def load_segmentation_split(
    dataset: str,
    split: str,
    *,
    data_dir: str | None = None,
    download: bool = True,
    reduce_zero_label: bool | None = None,
) -> tuple[tf.data.Dataset, list[str]]:
    """One split's (image, labels) pairs in stored order and the class names.

    `split` is any tfds split (``"test"``, ``"validation[:100]"``); for a folder ``"train"`` or
    ``"val"`` (``"validation"``/``"test"`` mean ``"val"``: the val folder or the held-out pairs).
    """
    if os.path.isdir(os.path.expanduser(dataset)):
        source = _from_folder(dataset, reduce_zero_label, DEFAULT_VAL_FRACTION)
        if split not in ("train", "val", "validation", "test"):
            raise ValueError(f"A folder dataset has the splits 'train' and 'val', not {split!r}.")
        return (source.train if split == "train" else source.val), source.class_names
    builder, spec = _mask_builder(dataset, data_dir, download)
    if split.split("[")[0] not in builder.info.splits:
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; splits: {list(builder.info.splits)}.")
    reduce = spec.reduce_zero_label if reduce_zero_label is None else bool(reduce_zero_label)
    lut = label_lookup(spec.label_map, reduce)
    data = _tfds_pairs(builder, spec, split, lut)
    names = reduced_names(spec.class_names, reduce) if spec.class_names else _inferred_names(data)
    return checked_labels(data, len(names), dataset), names


def _mask_builder(
    name: str, data_dir: str | None, download: bool
) -> tuple[tfds.core.DatasetBuilder, MaskDataset]:
    """The prepared builder and how it stores masks; checked before anything is downloaded."""
    builder = find_builder(name, data_dir, ALTERNATIVES)
    spec = _mask_spec(name, builder.info.features)
    if not builder.is_prepared():
        prepare_builder(builder, name, download, offline_name=SEG_DATASET_NAME)
    return builder, spec


def _mask_spec(name: str, features: tfds.features.FeaturesDict) -> MaskDataset:
    spec = KNOWN_MASK_DATASETS.get(name.split("/")[0].split(":")[0])
    if spec is None:
        key = next(
            (k for k in MASK_FEATURE_KEYS if k in features and isinstance(features[k], tfds.features.Image)),
            None,
        )
        images = [k for k, f in features.items() if isinstance(f, tfds.features.Image) and k != key]
        if key is None or not images:
            raise ValueError(
                f"Dataset {name!r} has no per-pixel mask feature (features: {list(features)}; looked for "
                f"an image and one of {MASK_FEATURE_KEYS}). Use {ALTERNATIVES}."
            )
        if features[key].shape[-1] != 1:
            raise ValueError(
                f"Dataset {name!r} stores {key!r} with {features[key].shape[-1]} channels; keras-pvt "
                "reads single-channel class-index masks of unknown datasets. Convert it to a folder "
                "of images/ + masks/ PNGs (one channel of class indices)."
            )
        spec = MaskDataset(key, (), image_key="image" if "image" in images else images[0])
    missing = [k for k in (spec.image_key, spec.mask_key) if k not in features]
    if missing:
        raise ValueError(
            f"Dataset {name!r} has no feature(s) {missing} (features: {list(features)}); choose a "
            "config with segmentation masks (e.g. 'cityscapes/semantic_segmentation')."
        )
    return spec


def _tfds_pairs(
    builder: tfds.core.DatasetBuilder,
    spec: MaskDataset,
    split: str,
    lut: np.ndarray,
    shuffle_files: bool = False,
) -> tf.data.Dataset:
    table = tf.constant(lut)
    data = builder.as_dataset(split=split, shuffle_files=shuffle_files)
    return data.map(
        lambda example: (
            example[spec.image_key],
            tf.gather(table, tf.cast(example[spec.mask_key][..., spec.channel], tf.int32)),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _from_folder(root: str, reduce_zero_label: bool | None, val_fraction: float) -> SegmentationSource:
    """The pairs of a folder, every file checked before training: headers and ends (`find_pairs`),
    then one decoding pass over the masks for their labels (`seg_folder_labels`)."""
    pairs = find_pairs(root, val_fraction)
    reduce = default_reduce_zero_label(root) if reduce_zero_label is None else bool(reduce_zero_label)
    lut = label_lookup(None, reduce)
    masks = [mask for _, split_masks in pairs.splits.values() for mask in split_masks]
    largest = largest_labels(masks, lut)
    names = pairs.class_names or _names_up_to(int(largest.max(initial=-1)))
    where = f"{root}/{CLASSES_FILE}" if pairs.class_names else root
    refuse_labels_beyond(masks, largest, len(names), where, reduce)
    table = tf.constant(lut)
    data = {
        split: tf.data.Dataset.from_tensor_slices(paths).map(
            lambda image, mask: decoded_pair(image, mask, table, len(names)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for split, paths in pairs.splits.items()
    }
    return SegmentationSource(
        name=root,
        train=data["train"],
        val=data["val"],
        class_names=names,
        train_size=len(pairs.splits["train"][0]),
        val_size=len(pairs.splits["val"][0]),
        reduce_zero_label=reduce,
    )


def _inferred_names(pairs: tf.data.Dataset) -> list[str]:
    """``class_0 .. class_{K-1}``, K = 1 + the largest label in the masks (one pass over them)."""
    largest = pairs.map(
        lambda image, labels: tf.reduce_max(tf.where(labels == IGNORE_LABEL, tf.zeros_like(labels), labels)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).reduce(tf.constant(0, tf.uint8), tf.maximum)
    return _names_up_to(int(largest))


def _names_up_to(largest: int) -> list[str]:
    """``class_0 .. class_{largest}``; `ValueError` for fewer than two classes."""
    if largest < 1:
        raise ValueError("The masks hold a single class (all 0 or ignored); segmentation needs two or more.")
    return [f"class_{index}" for index in range(largest + 1)]


def checked_labels(pairs: tf.data.Dataset, num_classes: int, where: str) -> tf.data.Dataset:
    """`pairs` whose labels fail with a clear error (when read) unless < `num_classes` or 255."""
    message = (
        f"{MASK_ERROR}: a mask of {where} holds a label >= {num_classes} (the number of classes) other "
        f"than the ignore label {IGNORE_LABEL}. Map its labels to 0..{num_classes - 1} (255 = ignore)."
    )

    def check(image: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        valid = tf.reduce_all((tf.cast(labels, tf.int32) < num_classes) | (labels == IGNORE_LABEL))
        with tf.control_dependencies([tf.debugging.Assert(valid, [message])]):
            return image, tf.identity(labels)

    return pairs.map(check, num_parallel_calls=tf.data.AUTOTUNE)
