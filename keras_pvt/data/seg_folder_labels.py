"""The labels of a folder's masks, checked before training: one decoding pass over every mask.

`largest_labels` decodes each mask once (in parallel, masks only, never the images) and returns
its largest label after the label table (the ignore label left out); a mask that fails to decode
is named. `refuse_labels_beyond` names the masks holding a label the class count does not cover.
`decoded_pair` then reads a pair while training and asserts, naming the file, that its mask still
holds valid labels (a file changed after the check).
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from keras_pvt.data.seg_folder import CLASSES_FILE
from keras_pvt.data.seg_labels import IGNORE_LABEL
from keras_pvt.segmentation.mask_checks import MASK_ERROR

SHOWN = 5  # offending files listed in an error


def largest_labels(masks: list[str], table: np.ndarray) -> np.ndarray:
    """The largest label of each mask (int, -1 for a mask of ignored pixels only), after `table`
    (stored value -> label). `ValueError` naming the masks that cannot be decoded."""
    lookup = tf.constant(table)

    def largest(path: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.gather(lookup, tf.cast(_decode_mask(path), tf.int32)), tf.int32)
        return tf.reduce_max(tf.where(labels == IGNORE_LABEL, -1, labels))

    paths = tf.data.Dataset.from_tensor_slices(masks)
    values = paths.map(largest, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(1024)
    try:
        return np.concatenate([batch.numpy() for batch in values]) if masks else np.zeros(0, int)
    except tf.errors.InvalidArgumentError as error:
        raise _undecodable(masks, error) from error


def refuse_labels_beyond(
    masks: list[str], largest: np.ndarray, num_classes: int, where: str, reduced: bool
) -> None:
    """`ValueError` naming the masks whose largest label is >= `num_classes` (ignore label aside)."""
    beyond = np.flatnonzero(largest >= num_classes)
    if not beyond.size:
        return
    listed = [f"{masks[i]} (label {largest[i]})" for i in beyond]
    after = " after reduce_zero_label (stored value = label + 1)" if reduced else ""
    raise ValueError(
        f"{MASK_ERROR}s: {len(listed)} mask(s) hold labels >= {num_classes}, the number of classes of "
        f"{where}{after}, other than the ignore label {IGNORE_LABEL}: {_listed(listed)}. Fix those "
        f"masks ({IGNORE_LABEL} marks pixels to ignore), or name every class in {CLASSES_FILE}."
    )


def decoded_pair(
    image_path: tf.Tensor, mask_path: tf.Tensor, table: tf.Tensor, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """``(image uint8 (H, W, 3), labels uint8 (H, W))`` of one pair; fails with an assertion naming
    the mask file when it holds a label >= `num_classes` other than the ignore label."""
    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    labels = tf.gather(table, tf.cast(_decode_mask(mask_path), tf.int32))
    valid = tf.reduce_all((tf.cast(labels, tf.int32) < num_classes) | (labels == IGNORE_LABEL))
    largest = tf.reduce_max(tf.where(labels == IGNORE_LABEL, tf.zeros_like(labels), labels))
    problem = f"holds a label >= {num_classes} (the number of classes) other than {IGNORE_LABEL} (ignore):"
    fix = f". Fix the mask ({IGNORE_LABEL} marks pixels to ignore) or name every class in {CLASSES_FILE}."
    check = tf.debugging.Assert(valid, [MASK_ERROR, mask_path, problem, largest, fix])
    with tf.control_dependencies([check]):
        return image, tf.identity(labels)


def _decode_mask(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_png(tf.io.read_file(path), channels=1)[..., 0]


def _undecodable(masks: list[str], error: tf.errors.InvalidArgumentError) -> ValueError:
    """The error naming every mask that fails to decode (found one by one, only after a failure)."""
    bad = []
    for path in masks:
        try:
            _decode_mask(tf.constant(path))
        except tf.errors.InvalidArgumentError as failure:
            bad.append(f"{path} ({_reason(failure)})")
    if not bad:  # cannot happen unless a file changed meanwhile
        bad = [_reason(error)]
    return ValueError(
        f"{MASK_ERROR}s: {len(bad)} mask(s) cannot be decoded: {_listed(bad)}. Re-encode or remove them "
        "(each with its image)."
    )


def _reason(error: tf.errors.OpError) -> str:
    """TensorFlow's message without its node names: "Invalid PNG data, size 347"."""
    text = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\].*", "", error.message.splitlines()[0])
    return text.strip()[:200]


def _listed(items: list[str]) -> str:
    more = f" ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more
