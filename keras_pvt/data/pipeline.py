"""Batched, preprocessed, prefetched `tf.data` pipelines for training and evaluation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from keras_pvt.data.preprocess import DEFAULT_CROP_PCT, eval_transform, train_transform
from keras_pvt.data.shapes import DATASET_NAME
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION, DataSource, load_source, tfds_builder

SHUFFLE_BUFFER = 2048


@dataclasses.dataclass
class Pipelines:
    """Training and validation `tf.data.Dataset`s of ``(images (B, S, S, 3) float32, labels (B,))``."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    class_names: list[str]
    train_size: int
    val_size: int
    image_size: int
    batch_size: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_size // self.batch_size


def make_pipelines(
    dataset: str | DataSource = DATASET_NAME,
    image_size: int = 224,
    batch_size: int = 64,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    crop_scale: tuple[float, float] = (0.35, 1.0),
    crop_pct: float = DEFAULT_CROP_PCT,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_from_train: bool = False,
    seed: int | None = 0,
    cache: bool = False,
) -> Pipelines:
    """Training and validation pipelines for `dataset` (tfds name, image folder, or `DataSource`).

    Training: shuffle, random-resized crop to `image_size` (area `crop_scale`), horizontal flip,
    ImageNet normalisation, batches of `batch_size` (the *global* batch under a `tf.distribute`
    strategy; the last partial batch is dropped). Validation: resize to ``image_size / crop_pct``,
    centre crop, normalise, keep every image. `seed` makes shuffling and augmentation repeatable.
    `shuffle=False` keeps the stored order (a seeded shuffle is reproducible on one device, but
    `tf.distribute` re-seeds it when it rewrites the pipeline). `cache` keeps decoded images in
    memory (small datasets). `val_from_train` validates on a
    held-out part of ``train`` even when the dataset has a test split (see `load_source`).
    """
    if image_size < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be positive, got {image_size}, {batch_size}.")
    source = (
        dataset
        if isinstance(dataset, DataSource)
        else load_source(
            dataset,
            data_dir=data_dir,
            download=download,
            val_fraction=val_fraction,
            val_from_train=val_from_train,
        )
    )
    if batch_size > source.train_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {source.train_size} training images of "
            f"{source.name!r}: no full batch can be formed. Use --batch-size {source.train_size} "
            "or less."
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = seed is not None
    train = _train_split(source, image_size, batch_size, augment, shuffle, crop_scale, crop_pct, seed, cache)
    val = _eval_batches(source.val.cache() if cache else source.val, image_size, batch_size, crop_pct)
    return Pipelines(
        train=train.with_options(options),
        val=val.with_options(options),
        class_names=source.class_names,
        train_size=source.train_size,
        val_size=source.val_size,
        image_size=image_size,
        batch_size=batch_size,
    )


def _train_split(
    source: DataSource,
    image_size: int,
    batch_size: int,
    augment: bool,
    shuffle: bool,
    crop_scale: tuple[float, float],
    crop_pct: float,
    seed: int | None,
    cache: bool,
) -> tf.data.Dataset:
    """Shuffled, augmented (seeded crop + flip per image) full batches of the training split."""
    options = {"shuffle": shuffle, "buffer": SHUFFLE_BUFFER, "seed": seed, "cache": cache}
    if not augment:
        train = training_examples(source, None, **options)
        return _eval_batches(train, image_size, batch_size, crop_pct, drop_remainder=True)
    train = training_examples(
        source,
        lambda pair, s: (train_transform(pair[0], image_size, scale=crop_scale, seed=s), pair[1]),
        **options,
    )
    return train.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def training_examples(
    source: Any,
    augment: Callable[[Any, tf.Tensor], Any] | None,
    *,
    shuffle: bool,
    buffer: int,
    seed: int | None,
    cache: bool,
    rerandomize_each_iteration: bool = False,
) -> tf.data.Dataset:
    """`source.train` (classification or segmentation) cached in memory if `cache`, shuffled
    through a buffer of ``min(buffer, source.train_size)`` examples unless `shuffle` is False, then
    mapped by ``augment(example, seed)``, a stateless seed pair per example drawn from `seed` (new
    pairs every epoch with `rerandomize_each_iteration`). `augment` None: not mapped."""
    train = source.train.cache() if cache else source.train
    if shuffle:
        train = train.shuffle(min(buffer, source.train_size), seed=seed)
    if augment is None:
        return train
    seeds = tf.data.Dataset.random(
        seed=0 if seed is None else seed, rerandomize_each_iteration=rerandomize_each_iteration
    )
    return tf.data.Dataset.zip((train, seeds.batch(2))).map(augment, num_parallel_calls=tf.data.AUTOTUNE)


def _eval_batches(
    data: tf.data.Dataset, image_size: int, batch_size: int, crop_pct: float, drop_remainder: bool = False
) -> tf.data.Dataset:
    """``(image, label)`` pairs resized, centre-cropped and normalised, in batches."""
    data = data.map(
        lambda image, label: (eval_transform(image, image_size, crop_pct), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def eval_pipeline(
    dataset: str = DATASET_NAME,
    split: str = "test",
    image_size: int = 224,
    batch_size: int = 64,
    data_dir: str | None = None,
    download: bool = True,
    crop_pct: float = DEFAULT_CROP_PCT,
) -> tf.data.Dataset:
    """Batched ``(images, labels)`` of one tfds split with the evaluation transform (no shuffle)."""
    builder = tfds_builder(dataset, data_dir=data_dir, download=download)
    if split.split("[")[0] not in builder.info.splits:
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; splits: {list(builder.info.splits)}.")
    data = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return _eval_batches(data, image_size, batch_size, crop_pct)


def to_numpy(dataset: tf.data.Dataset, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a batched ``(images, labels)`` dataset into two arrays (first `limit` rows)."""
    images, labels = [], []
    count = 0
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
        count += len(batch_labels)
        if limit is not None and count >= limit:
            break
    if not images:
        raise ValueError("The dataset is empty.")
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]
