"""Joint image/mask transforms for segmentation (TensorFlow ops, one example at a time).

Training (mmseg's ADE20K pipeline, roughly): random rescale so the shorter side is ``r * max(h, w)``
(``r`` uniform in `scale_range`, the longer side capped at 4x that), random crop to at most
``(h, w)``, horizontal flip, mmseg's PhotoMetricDistortion on the image only, ImageNet
normalisation, then padding at the bottom/right to ``(h, w)``: image 0 after normalisation (the
mean colour, as mmseg pads), mask 255 (ignore). Masks are always resized with nearest neighbour.
Evaluation: resize keeping the aspect ratio to fit inside ``(h, w)``, pad the same way.
Every random draw comes from a stateless seed, so a seed makes the result repeatable.
"""

from __future__ import annotations

import tensorflow as tf

from keras_pvt.data.preprocess import normalize
from keras_pvt.data.seg_labels import IGNORE_LABEL

LONG_SIDE_CAP = 4.0  # mmseg's (2048, 512) scale: the longer side at most 4x the shorter's target
BRIGHTNESS_DELTA = 32.0  # PhotoMetricDistortion defaults
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 18.0 / 180.0  # 18 on OpenCV's 0-180 hue scale, as a fraction of the colour circle


def train_augment(
    image: tf.Tensor,
    labels: tf.Tensor,
    size: tuple[int, int],
    seed: tf.Tensor,
    scale_range: tuple[float, float] = (0.5, 2.0),
    photometric: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 image (H, W, 3) + uint8/int labels (H, W) -> float32 (h, w, 3) normalised, int32 (h, w)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    image, labels = random_rescale(image, labels, max(size), scale_range, seeds[0])
    image, labels = random_crop(image, labels, size, seeds[1])
    image, labels = random_flip(image, labels, seeds[2])
    if photometric:
        image = photometric_distortion(image, seeds[3])
    return pad_to(normalize(image), labels, size)


def eval_resize(image: tf.Tensor, labels: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Deterministic: fit inside `size` keeping the aspect ratio (bilinear image, nearest mask),
    normalise, pad bottom/right (image 0, mask 255). Images of exactly `size` pass unchanged."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(size[0] / shape[0], size[1] / shape[1])
    target = tf.clip_by_value(tf.cast(tf.round(shape * scale), tf.int32), 1, tf.constant(size))
    image, labels = _resize_pair(image, labels, target)
    return pad_to(normalize(image), labels, size)


def random_rescale(
    image: tf.Tensor, labels: tf.Tensor, base: int, scale_range: tuple[float, float], seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Rescale so the shorter side is ``r * base`` (longer side <= ``LONG_SIDE_CAP * r * base``)."""
    ratio = tf.random.stateless_uniform((), seed, scale_range[0], scale_range[1])
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = ratio * tf.minimum(base / tf.reduce_min(shape), LONG_SIDE_CAP * base / tf.reduce_max(shape))
    return _resize_pair(image, labels, tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1))


def random_crop(
    image: tf.Tensor, labels: tf.Tensor, size: tuple[int, int], seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The same random window of at most `size` from both (the whole side where it is shorter)."""
    shape = tf.shape(image)[:2]
    crop = tf.minimum(shape, tf.constant(size))
    top_left = tf.random.stateless_uniform((2,), seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
    top_left = top_left % (shape - crop + 1)
    image = tf.ensure_shape(
        tf.slice(image, tf.concat([top_left, [0]], 0), tf.concat([crop, [-1]], 0)), (None, None, 3)
    )
    return image, tf.slice(labels, top_left, crop)


def random_flip(image: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirror both left-right with probability 0.5."""
    flip = tf.random.stateless_uniform((), seed) < 0.5
    return (
        tf.where(flip, tf.reverse(image, [1]), image),
        tf.where(flip, tf.reverse(labels, [1]), labels),
    )


def photometric_distortion(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """mmseg's PhotoMetricDistortion on a [0, 255] image: each of brightness (+-32), contrast
    (x0.5-1.5, before or after the colour changes), saturation (x0.5-1.5) and hue (+-18/180 of
    the circle) applied with probability 0.5, clipping to [0, 255] after each."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    draws = tf.random.stateless_uniform((5,), seeds[0])  # apply? per step, and contrast order
    amounts = tf.random.stateless_uniform((4,), seeds[1])

    def chance(index: int, value: tf.Tensor, neutral: float) -> tf.Tensor:
        return tf.where(draws[index] < 0.5, value, neutral)

    brightness = chance(0, (2 * amounts[0] - 1) * BRIGHTNESS_DELTA, 0.0)
    contrast = chance(1, _between(amounts[1], CONTRAST_RANGE), 1.0)
    saturation = chance(2, _between(amounts[2], SATURATION_RANGE), 1.0)
    hue = chance(3, (2 * amounts[3] - 1) * HUE_DELTA, 0.0)
    contrast_first = draws[4] < 0.5

    image = tf.clip_by_value(tf.cast(image, tf.float32) + brightness, 0.0, 255.0)
    image = tf.where(contrast_first, tf.clip_by_value(image * contrast, 0.0, 255.0), image)
    colour = tf.image.adjust_saturation(image / 255.0, saturation)
    image = tf.clip_by_value(tf.image.adjust_hue(colour, hue) * 255.0, 0.0, 255.0)
    return tf.where(contrast_first, image, tf.clip_by_value(image * contrast, 0.0, 255.0))


def pad_to(image: tf.Tensor, labels: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Pad a normalised image with 0 and its labels with 255 at the bottom/right up to `size`."""
    shape = tf.shape(image)[:2]
    padding = tf.stack([[0, size[0] - shape[0]], [0, size[1] - shape[1]]])
    image = tf.pad(image, tf.concat([padding, [[0, 0]]], 0))
    labels = tf.pad(tf.cast(labels, tf.int32), padding, constant_values=IGNORE_LABEL)
    return tf.ensure_shape(image, (*size, 3)), tf.ensure_shape(labels, size)


def _resize_pair(image: tf.Tensor, labels: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    image = tf.image.resize(image, target, method="bilinear")
    labels = tf.image.resize(labels[..., None], target, method="nearest")[..., 0]
    return image, labels


def _between(unit: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    return bounds[0] + unit * (bounds[1] - bounds[0])
