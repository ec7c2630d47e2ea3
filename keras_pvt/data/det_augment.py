"""Image and box transforms for detection as mmdet's RetinaNet 1x pipeline (TensorFlow ops, one
example at a time).

Resize keeping the aspect ratio to fit inside ``(height, width)`` (mmcv's ``rescale``: one factor,
sides rounded half up; for a landscape image inside (800, 1333) this is mmdet's ``scale=(1333,
800)``), boxes scaled by each side's own factor and clipped to the resized image; in training a
horizontal flip with probability 0.5 (boxes mirrored on the resized width); ImageNet normalisation
(`preprocess_input`, mmdet's mean/std in RGB order); padding at the bottom/right to ``(height,
width)`` with 0 after normalisation, as mmdet's data preprocessor pads. Crowd boxes, which mmdet's
RetinaNet never trains on, are dropped in training.
"""

from __future__ import annotations

import tensorflow as tf

from keras_pvt.data.preprocess import normalize

PAD_DIVISOR = 32  # mmdet's pad_size_divisor: the valid area of an image for its anchors


def resize_keep_ratio(
    image: tf.Tensor, boxes: tf.Tensor, size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(image float32 (h', w', 3), boxes (K, 4) in the resized image, clipped to it, scale (2,)
    = (h' / h, w' / w))`` with ``h' = int(h * s + 0.5)``, ``s = min(height / h, width / w)``."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.minimum(size[0] / shape[0], size[1] / shape[1])
    target = tf.minimum(tf.cast(tf.floor(shape * factor + 0.5), tf.int32), tf.constant(size))
    target = tf.maximum(target, 1)
    resized = tf.image.resize(image, target, method="bilinear")
    scale = tf.cast(target, tf.float32) / shape  # (h' / h, w' / w)
    boxes = boxes * tf.stack([scale[1], scale[0], scale[1], scale[0]])
    limit = tf.cast(tf.stack([target[1], target[0], target[1], target[0]]), tf.float32)
    boxes = tf.clip_by_value(boxes, 0.0, limit)
    return resized, boxes, scale


def flip_boxes(boxes: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Boxes of an image of `width` mirrored left-right: ``x1' = width - x2``, ``x2' = width - x1``."""
    width = tf.cast(width, boxes.dtype)
    return tf.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def pad_image(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """A normalised image padded with 0 at the bottom/right up to `size`."""
    shape = tf.shape(image)[:2]
    image = tf.pad(image, [[0, size[0] - shape[0]], [0, size[1] - shape[1]], [0, 0]])
    return tf.ensure_shape(image, (*size, 3))


def train_transform(example: dict, size: tuple[int, int], seed: tf.Tensor, flip: bool = True) -> dict:
    """An example resized, flipped with probability 0.5 (stateless `seed`), normalised, padded;
    crowd boxes dropped. Returns ``{"image", "boxes", "labels", "image_shape"}`` (the resized
    (h', w') before padding)."""
    keep = tf.logical_not(example["is_crowd"])
    image, boxes, _ = resize_keep_ratio(example["image"], tf.boolean_mask(example["boxes"], keep), size)
    shape = tf.shape(image)[:2]
    if flip:
        mirrored = tf.random.stateless_uniform((), seed) < 0.5
        image = tf.where(mirrored, tf.reverse(image, [1]), image)
        boxes = tf.where(mirrored, flip_boxes(boxes, shape[1]), boxes)
    return {
        "image": pad_image(normalize(image), size),
        "boxes": boxes,
        "labels": tf.boolean_mask(example["labels"], keep),
        "image_shape": shape,
    }


def eval_transform(example: dict, size: tuple[int, int]) -> tuple[tf.Tensor, dict]:
    """``(image, info)``: the deterministic resize, normalisation and padding, and what the
    evaluation needs to map detections back and score them (``image_id``, ``scale`` (h'/h, w'/w),
    ``image_shape`` (h', w'), ``original_size`` (h, w) and the original ``gt_*`` boxes)."""
    original = tf.shape(example["image"])[:2]
    image, _, scale = resize_keep_ratio(example["image"], tf.zeros((0, 4)), size)
    info = {
        "image_id": example["image_id"],
        "scale": scale,
        "image_shape": tf.shape(image)[:2],
        "original_size": original,
        "gt_boxes": example["boxes"],
        "gt_labels": example["labels"],
        "gt_is_crowd": example["is_crowd"],
        "gt_area": example["area"],
    }
    return pad_image(normalize(image), size), info
