"""Image preprocessing and augmentation for `tf.data` pipelines (TensorFlow ops, one image at a time).

Normalisation is `keras_pvt.images.preprocess_input` (pixels scaled to [0, 1], then ImageNet mean/std).
"""

from __future__ import annotations

import tensorflow as tf

from keras_pvt.images import IMAGENET_MEAN, IMAGENET_STD, preprocess_input

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "eval_transform", "normalize", "train_transform"]

DEFAULT_CROP_PCT = 0.875  # eval: resize to size / 0.875, then centre-crop `size`


def normalize(image: tf.Tensor) -> tf.Tensor:
    """uint8/float [0, 255] RGB -> float32 ImageNet-normalised (`preprocess_input`, which casts).

    The image goes in with its own dtype, so that integer pixels are never taken for float images
    scaled to [0, 1] (`preprocess_input`'s warning).
    """
    return preprocess_input(image)


def eval_transform(image: tf.Tensor, size: int, crop_pct: float = DEFAULT_CROP_PCT) -> tf.Tensor:
    """Resize the shorter side to ``size / crop_pct``, centre-crop `size` x `size`, normalise."""
    image = _ensure_rgb(image)
    scaled = tf.cast(tf.math.ceil(size / crop_pct), tf.int32)
    image = _resize_shorter_side(image, scaled)
    image = _center_crop(image, size)
    return normalize(image)


def train_transform(
    image: tf.Tensor,
    size: int,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Random-resized crop (area fraction `scale`, aspect `ratio`) to `size`, random flip, normalise.

    With `seed` (a stateless seed, shape (2,)) the augmentation is deterministic.
    """
    image = _ensure_rgb(image)
    seed = seed if seed is not None else tf.random.uniform((2,), maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seeds[0],
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.ensure_shape(tf.slice(image, begin, crop_size), (None, None, 3))
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    return normalize(tf.clip_by_value(image, 0.0, 255.0))


def _ensure_rgb(image: tf.Tensor) -> tf.Tensor:
    """Grey images to RGB and RGBA to RGB, so every source yields (H, W, 3)."""
    channels = image.shape[-1]
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    return image


def _resize_shorter_side(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.minimum(height, width)
    new_size = tf.cast(tf.round(tf.stack([height, width]) * scale), tf.int32)
    new_size = tf.maximum(new_size, target)
    return tf.image.resize(image, new_size, method="bilinear", antialias=True)


def _center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    shape = tf.shape(image)
    top = (shape[0] - size) // 2
    left = (shape[1] - size) // 2
    crop = tf.slice(image, tf.stack([top, left, 0]), tf.stack([size, size, -1]))
    return tf.ensure_shape(crop, (size, size, 3))
