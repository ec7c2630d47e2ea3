"""Batched, augmented `tf.data` pipelines for semantic segmentation (training and evaluation)."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_pvt.data.pipeline import Pipelines, training_examples
from keras_pvt.data.seg_augment import eval_resize, train_augment
from keras_pvt.data.seg_labels import IGNORE_LABEL
from keras_pvt.data.seg_shapes import SEG_DATASET_NAME
from keras_pvt.data.seg_sources import SegmentationSource, load_segmentation_source, load_segmentation_split
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION
from keras_pvt.images import parse_image_size

SHUFFLE_BUFFER = 1024


@dataclasses.dataclass
class SegmentationPipelines(Pipelines):
    """Training and validation `tf.data.Dataset`s of ``(images float32 (B, h, w, 3), masks int32
    (B, h, w))``; images normalised like `keras_pvt.preprocess_input`, ignored pixels `ignore_label`.

    `image_size` is as given (an int for square crops); `height` and `width` always hold the sides.
    """

    image_size: int | tuple[int, int]
    ignore_label: int
    reduce_zero_label: bool
    height: int
    width: int


def make_segmentation_pipelines(
    dataset: str | SegmentationSource = SEG_DATASET_NAME,
    *,
    image_size: int | tuple[int, int] = 256,
    batch_size: int = 8,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    scale_range: tuple[float, float] = (0.5, 2.0),
    reduce_zero_label: bool | None = None,
    ignore_label: int = IGNORE_LABEL,
    val_from_train: bool = False,
    seed: int | None = 0,
    cache: bool = False,
    photometric: bool = True,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> SegmentationPipelines:
    """Training and validation pipelines for `dataset` (tfds name with masks, folder of
    image/mask pairs, the embedded ``keras_pvt_seg_shapes``, or a `SegmentationSource`).

    Training: shuffle, `seg_augment.train_augment` (random rescale by `scale_range`, crop, flip,
    photometric distortion unless `photometric=False`; `augment=False`: the evaluation resize),
    full batches of `batch_size` (the global batch under `tf.distribute`). Validation:
    `seg_augment.eval_resize` (fit inside `image_size` keeping the aspect ratio, pad), every
    image. `image_size` is an int or ``(height, width)``. The bare embedded name renders at
    ``max(height, width)`` px. `reduce_zero_label` None: the dataset's default (on for ADE20K).
    Pixels to ignore are `ignore_label` in the masks. `seed` makes shuffling and augmentation
    repeatable (different augmentation in every epoch).
    """
    height, width = _size(image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    source = (
        dataset
        if isinstance(dataset, SegmentationSource)
        else load_segmentation_source(
            _resolved_name(dataset, height, width),
            data_dir=data_dir,
            download=download,
            reduce_zero_label=reduce_zero_label,
            val_fraction=val_fraction,
            val_from_train=val_from_train,
        )
    )
    _check_ignore_label(ignore_label, source.num_classes)
    if batch_size > source.train_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {source.train_size} training images of "
            f"{source.name!r}: no full batch can be formed. Use a batch size of {source.train_size} or less."
        )
    size = (height, width)
    train = _train_examples(source, size, augment, shuffle, scale_range, photometric, seed, cache)
    val = source.val.cache() if cache else source.val
    val = val.map(lambda image, labels: eval_resize(image, labels, size), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = seed is not None
    return SegmentationPipelines(
        train=_batched(train, batch_size, ignore_label, drop_remainder=True).with_options(options),
        val=_batched(val, batch_size, ignore_label).with_options(options),
        class_names=list(source.class_names),
        image_size=image_size if isinstance(image_size, int) or height != width else height,
        batch_size=batch_size,
        ignore_label=ignore_label,
        reduce_zero_label=source.reduce_zero_label,
        train_size=source.train_size,
        val_size=source.val_size,
        height=height,
        width=width,
    )


def segmentation_eval_pipeline(
    dataset: str = SEG_DATASET_NAME,
    split: str = "test",
    *,
    image_size: int | tuple[int, int] = 256,
    batch_size: int = 8,
    data_dir: str | None = None,
    download: bool = True,
    reduce_zero_label: bool | None = None,
    ignore_label: int = IGNORE_LABEL,
) -> tf.data.Dataset:
    """Batched ``(images, masks)`` of one split, in stored order, with the deterministic
    evaluation resize (`seg_augment.eval_resize`); for held-out evaluation and export checks.

    `split`: a tfds split (``"test"``, ``"test[:64]"``) or, for a folder, ``"train"``/``"val"``.
    """
    height, width = _size(image_size)
    data, names = load_segmentation_split(
        _resolved_name(dataset, height, width),
        split,
        data_dir=data_dir,
        download=download,
        reduce_zero_label=reduce_zero_label,
    )
    _check_ignore_label(ignore_label, len(names))
    data = data.map(
        lambda image, labels: eval_resize(image, labels, (height, width)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return _batched(data, batch_size, ignore_label)


def _train_examples(
    source: SegmentationSource,
    size: tuple[int, int],
    augment: bool,
    shuffle: bool,
    scale_range: tuple[float, float],
    photometric: bool,
    seed: int | None,
    cache: bool,
) -> tf.data.Dataset:
    """Shuffled, augmented (a stateless seed per example, new ones every epoch) training examples."""
    options = {"shuffle": shuffle, "buffer": SHUFFLE_BUFFER, "seed": seed, "cache": cache}
    if augment:
        return training_examples(
            source,
            lambda pair, s: train_augment(*pair, size, s, scale_range=scale_range, photometric=photometric),
            rerandomize_each_iteration=True,
            **options,
        )
    return training_examples(source, None, **options).map(
        lambda image, labels: eval_resize(image, labels, size), num_parallel_calls=tf.data.AUTOTUNE
    )


def _size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = parse_image_size(image_size)
    return height, width


def _resolved_name(dataset: str, height: int, width: int) -> str:
    """The bare embedded name renders at the training resolution (the longer side)."""
    return f"{SEG_DATASET_NAME}/{max(height, width)}px" if dataset == SEG_DATASET_NAME else dataset


def _check_ignore_label(ignore_label: int, num_classes: int) -> None:
    if 0 <= ignore_label < num_classes:
        raise ValueError(
            f"ignore_label {ignore_label} is one of the {num_classes} class labels (0..{num_classes - 1}); "
            f"use 255 (the default) or another value outside that range."
        )


def _batched(
    data: tf.data.Dataset, batch_size: int, ignore_label: int, drop_remainder: bool = False
) -> tf.data.Dataset:
    if ignore_label != IGNORE_LABEL:
        data = data.map(
            lambda image, labels: (image, tf.where(labels == IGNORE_LABEL, ignore_label, labels)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
