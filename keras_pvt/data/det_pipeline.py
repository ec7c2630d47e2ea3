"""Batched `tf.data` pipelines for detection: augmented training batches (with RetinaNet's targets
for `model.fit`, or the boxes themselves) and evaluation batches with what COCO mAP needs."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_pvt.data.det_augment import eval_transform, train_transform
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.data.det_sources import DetectionSource, load_detection_source
from keras_pvt.data.pipeline import training_examples
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION
from keras_pvt.images import parse_image_size

SHUFFLE_BUFFER = 512
PADDED_LABEL = -1  # label of a padded box row


@dataclasses.dataclass
class DetectionPipelines:
    """``train``: ``(images float32 (B, h, w, 3), targets)``, targets RetinaNet's
    (`det_targets.encode_targets`) or ``{"boxes" (B, K, 4), "labels" (B, K) (-1 padded),
    "image_shape" (B, 2)}`` without them; ``val``: ``(images, info)`` of `det_augment.eval_transform`
    (padded to the batch's most boxes). Images normalised like `keras_pvt.preprocess_input`."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    class_names: list[str]
    category_ids: list[int]
    train_size: int
    val_size: int
    batch_size: int
    height: int
    width: int
    val_ground_truth: dict | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) the images are resized into and padded to."""
        return (self.height, self.width)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_size // self.batch_size


def make_detection_pipelines(
    dataset: str | DetectionSource = DET_DATASET_NAME,
    *,
    image_size: int | tuple[int, int] = 512,
    batch_size: int = 2,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    retinanet_targets: bool = True,
    seed: int | None = 0,
    cache: bool = False,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    invalid_boxes: str = "error",
    val_from_train: bool = False,
) -> DetectionPipelines:
    """Training and validation pipelines for `dataset` (a COCO folder, a tfds name with boxes such
    as ``"coco/2017"``, the embedded ``keras_pvt_det_shapes`` or a `DetectionSource`).

    Training: shuffle, `det_augment.train_transform` (resize into `image_size` keeping the ratio,
    flip unless `augment=False`, normalise, pad), full batches of `batch_size`; with
    `retinanet_targets` each image's anchors assigned and encoded (`det_targets`) for the raw
    RetinaNet outputs. Validation: the same resize without flip, every image. The bare embedded
    name renders at ``max(image_size)`` px. `seed` makes shuffling and flips repeatable.
    `val_from_train` validates a tfds dataset on the last `val_fraction` of ``train`` even where it
    has a validation or test split (kept unseen for a final evaluation).
    """
    height, width = parse_image_size(image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    source = (
        dataset
        if isinstance(dataset, DetectionSource)
        else load_detection_source(
            _resolved_name(dataset, height, width),
            data_dir=data_dir,
            download=download,
            val_fraction=val_fraction,
            invalid_boxes=invalid_boxes,
            val_from_train=val_from_train,
        )
    )
    if batch_size > source.train_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {source.train_size} training images of "
            f"{source.name!r}: no full batch can be formed. Use a batch size of {source.train_size} or less."
        )
    size = (height, width)
    train = training_examples(
        source,
        lambda example, s: train_transform(example, size, s, flip=augment),
        shuffle=shuffle,
        buffer=SHUFFLE_BUFFER,
        seed=seed,
        cache=cache,
        rerandomize_each_iteration=True,
    )
    if retinanet_targets:
        train = _with_targets(train, height, width).batch(batch_size, drop_remainder=True)
    else:
        train = train.padded_batch(
            batch_size,
            padded_shapes={
                "image": (height, width, 3),
                "boxes": (None, 4),
                "labels": (None,),
                "image_shape": (2,),
            },
            padding_values={"image": 0.0, "boxes": 0.0, "labels": PADDED_LABEL, "image_shape": 0},
            drop_remainder=True,
        )
        train = train.map(lambda batch: (batch["image"], {k: v for k, v in batch.items() if k != "image"}))
    val = source.val.cache() if cache else source.val
    val = val.map(lambda example: eval_transform(example, size), num_parallel_calls=tf.data.AUTOTUNE)
    val = padded_eval_batches(val, batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = seed is not None
    return DetectionPipelines(
        train=train.prefetch(tf.data.AUTOTUNE).with_options(options),
        val=val.with_options(options),
        class_names=list(source.class_names),
        category_ids=list(source.category_ids),
        train_size=source.train_size,
        val_size=source.val_size,
        batch_size=batch_size,
        height=height,
        width=width,
        val_ground_truth=source.val_ground_truth,
    )


def padded_eval_batches(data: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """``(image, info)`` pairs of `det_augment.eval_transform` in batches, the ground-truth rows
    padded to the batch's most boxes (labels -1)."""
    padding = {
        "image_id": tf.constant(0, tf.int64),
        "scale": 0.0,
        "image_shape": 0,
        "original_size": 0,
        "gt_boxes": 0.0,
        "gt_labels": PADDED_LABEL,
        "gt_is_crowd": False,
        "gt_area": 0.0,
    }
    return data.padded_batch(batch_size, padding_values=(0.0, padding)).prefetch(tf.data.AUTOTUNE)


def _resolved_name(dataset: str, height: int, width: int) -> str:
    """The bare embedded name renders at the training resolution (the longer side)."""
    return f"{DET_DATASET_NAME}/{max(height, width)}px" if dataset == DET_DATASET_NAME else dataset


def _with_targets(examples: tf.data.Dataset, height: int, width: int) -> tf.data.Dataset:
    """``(image, targets)`` per example: the targets of its own boxes (no padding to the batch's
    most boxes, so an image costs what its boxes cost), in parallel."""
    from keras_pvt.data.det_targets import encode_targets  # needs the detection package
    from keras_pvt.detection.anchors import anchor_boxes

    anchors = tf.constant(anchor_boxes(height, width))

    def targets(example: dict) -> tuple[tf.Tensor, dict]:
        encoded = encode_targets(
            anchors, example["boxes"][None], example["labels"][None], example["image_shape"][None]
        )
        return example["image"], {key: value[0] for key, value in encoded.items()}

    return examples.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
