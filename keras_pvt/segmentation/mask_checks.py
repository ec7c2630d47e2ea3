"""Checks of segmentation masks against a segmenter's logits, shared by the loss and the metrics.

A mask must hold whole class indices in ``[0, classes)`` or the ignore label, one mask per image,
of the logits' aspect ratio (logits of a scaled size, e.g. stride 4, are resized to the mask).
Anything else would be counted silently wrong, so it is refused: with `ValueError` when the shapes
or values are known (eager calls, static shapes while tracing), inside a TensorFlow graph with an
assertion that fails the run, inside a traced JAX function with a callback that raises. Written
with `keras.ops`; TensorFlow and JAX are imported only on their own backend. XLA drops
TensorFlow's assertions (``jit_compile=True`` on TensorFlow): there, pixels of labels outside the
classes are left out of the loss and the counts instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

MASK_ERROR = "Bad segmentation mask"  # every message starts so (training turns them into ValueError)
SHOWN_VALUES = 5


def checked_masks(y_true: Any, y_pred: Any, ignore_label: int, user: str) -> tuple[Any, Any]:
    """``(labels int32 (B, H, W), logits float32 (B, h, w, C))`` once the masks `y_true` ((B, H, W)
    or (B, H, W, 1)) are found to fit the logits `y_pred`; `user` names the caller in errors."""
    labels = ops.convert_to_tensor(y_true)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 3:
        raise ValueError(
            f"{MASK_ERROR}s for {user}: masks must be (batch, height, width) or (batch, height, width, 1), "
            f"got shape {tuple(labels.shape)}."
        )
    logits = ops.cast(y_pred, "float32")
    if len(logits.shape) != 4:
        raise ValueError(
            f"{user}: predictions must be logits (batch, height, width, classes), got shape "
            f"{tuple(logits.shape)}."
        )
    labels = _check_shapes(labels, logits, user)
    labels = _whole_labels(labels, user)
    return _labels_in_range(labels, int(logits.shape[-1]), ignore_label, user), logits


def same_aspect_ratio(mask_size: tuple[int, int], logits_size: tuple[int, int]) -> bool:
    """Whether the logits' (h, w) can be the mask's (H, W) scaled by one factor, each side rounded
    by less than a pixel (|h - s*H| < 1 and |w - s*W| < 1 for some s): |H*w - W*h| < H + W."""
    (height, width), (rows, cols) = mask_size, logits_size
    return abs(height * cols - width * rows) < height + width


def _check_shapes(labels: Any, logits: Any, user: str) -> Any:
    """`labels`, after refusing a batch-size mismatch and another aspect ratio than the logits'."""
    mask_shape, logits_shape = tuple(labels.shape), tuple(logits.shape)
    batch = (
        f"{MASK_ERROR}s for {user}: the masks and the logits differ in batch size",
        "Pass one mask per image, in the images' order.",
    )
    aspect = (
        f"{MASK_ERROR}s for {user}: the masks' height:width differs from the logits'",
        "Logits are resized to the masks only when one is a scaled copy of the other: resize or crop "
        "each mask together with its image (nearest neighbour for masks).",
    )
    shapes = f"(masks {_shape(mask_shape)}, logits {_shape(logits_shape)})"
    batches, sizes = (mask_shape[0], logits_shape[0]), (mask_shape[1:3], logits_shape[1:3])
    if None not in batches and batches[0] != batches[1]:
        raise ValueError(f"{batch[0]} {shapes}. {batch[1]}")
    if None not in sizes[0] + sizes[1] and not same_aspect_ratio(*sizes):
        raise ValueError(f"{aspect[0]} {shapes}. {aspect[1]}")
    if None in batches + sizes[0] + sizes[1]:  # a TensorFlow graph with run-time sizes
        labels = _graph_shape_check(labels, logits, batch, aspect)
    return labels


def _whole_labels(labels: Any, user: str) -> Any:
    """`labels` as int32, after refusing float masks whose values are not whole numbers (or NaN)."""
    if not _is_float(labels.dtype):
        return ops.cast(labels, "int32")
    fractional = ops.logical_not(ops.equal(labels, ops.floor(labels)))  # NaN too
    count = ops.sum(ops.cast(fractional, "int32"))
    example = ops.max(ops.where(fractional, labels, -np.inf))
    problem = f"{MASK_ERROR}s for {user}: float masks hold values that are not whole class indices."
    fix = "Store masks as integers, and resize them with nearest neighbour (never bilinear)."

    def found() -> str:
        values = ops.convert_to_numpy(labels)
        fractional_values = np.unique(values[values != np.floor(values)])
        return f"{int(ops.convert_to_numpy(count))} pixel(s), values {_listed(fractional_values)}"

    data = {"pixels": count, "e.g.": example}
    labels = _enforce(ops.equal(count, 0), (problem, fix), found, data, labels)
    return ops.cast(labels, "int32")


def _labels_in_range(labels: Any, num_classes: int, ignore_label: int, user: str) -> Any:
    """`labels`, after refusing values outside ``[0, num_classes)`` other than `ignore_label`."""
    outside = ops.logical_and(
        ops.logical_or(labels < 0, labels >= num_classes), ops.not_equal(labels, ignore_label)
    )
    count = ops.sum(ops.cast(outside, "int32"))
    kept = ops.where(ops.equal(labels, ignore_label), 0, labels)
    problem = (
        f"{MASK_ERROR}s for {user}: labels outside 0..{num_classes - 1} (the logits have "
        f"{num_classes} classes) other than the ignore label {ignore_label}."
    )
    fix = (
        f"Map the dataset's labels to 0..{num_classes - 1}, give pixels to leave out the ignore label, "
        "or build the model with as many classes as the masks use."
    )

    def found() -> str:
        values = ops.convert_to_numpy(labels)
        wrong = np.unique(values[((values < 0) | (values >= num_classes)) & (values != ignore_label)])
        return f"{int(ops.convert_to_numpy(count))} pixel(s), labels {_listed(wrong)}"

    data = {"pixels": count, "labels from": ops.min(kept), "to": ops.max(kept)}  # ignore label as 0
    return _enforce(ops.equal(count, 0), (problem, fix), found, data, labels)


def _enforce(
    ok: Any, message: tuple[str, str], found: Callable[[], str], data: dict[str, Any], tensor: Any
) -> Any:
    """`tensor`, once the scalar `ok` holds. Else, with `message` = (problem, fix): `ValueError`
    naming what was `found()` when values are known; in a TensorFlow graph a failing assertion,
    in traced JAX a raising callback, each naming `data`'s values."""
    problem, fix = message
    backend = keras.backend.backend()
    if backend == "tensorflow" and not _tf_eager():
        parts = [f"{problem} {fix} Found:", *(part for item in data.items() for part in item)]
        return _tf_assert(ok, parts[0], parts[1:], tensor)
    if backend == "jax" and _jax_traced(ok):
        import jax

        jax.debug.callback(functools.partial(_raise_unless, message, list(data)), ok, *data.values())
        return tensor
    if not bool(ops.convert_to_numpy(ok)):
        raise ValueError(f"{problem} Found {found()}. {fix}")
    return tensor


def _raise_unless(message: tuple[str, str], names: list[str], ok: Any, *values: Any) -> None:
    """The JAX callback: raise the (problem, fix) `message` naming `values` when `ok` is false."""
    if not bool(np.asarray(ok)):
        found = ", ".join(f"{name} {np.asarray(value)}" for name, value in zip(names, values))
        raise ValueError(f"{message[0]} Found {found}. {message[1]}")


def _graph_shape_check(labels: Any, logits: Any, batch: tuple[str, str], aspect: tuple[str, str]) -> Any:
    """TensorFlow graphs with run-time sizes: assert that the batch sizes and aspect ratios agree;
    `batch` and `aspect` are the (problem, fix) messages."""
    import tensorflow as tf

    mask_shape, logits_shape = tf.shape(labels), tf.shape(logits)
    shapes = ["masks", mask_shape, "logits", logits_shape]
    same_batch = mask_shape[0] == logits_shape[0]
    labels = _tf_assert(same_batch, f"{batch[0]}. {batch[1]} Shapes:", shapes, labels)
    height, width, rows, cols = mask_shape[1], mask_shape[2], logits_shape[1], logits_shape[2]
    same_aspect = tf.abs(height * cols - width * rows) < height + width
    return _tf_assert(same_aspect, f"{aspect[0]}. {aspect[1]} Shapes:", shapes, labels)


def _tf_assert(ok: Any, message: str, data: Sequence[Any], tensor: Any) -> Any:
    import tensorflow as tf

    check = tf.debugging.Assert(ok, [message, *data], summarize=8)
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def _tf_eager() -> bool:
    import tensorflow as tf

    return tf.executing_eagerly()


def _jax_traced(value: Any) -> bool:
    import jax

    return isinstance(value, jax.core.Tracer)


def _is_float(dtype: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if size is None else str(size) for size in shape) + ")"


def _listed(values: np.ndarray) -> str:
    shown = ", ".join(f"{value:g}" for value in values[:SHOWN_VALUES].tolist())
    return shown + (f" ... ({len(values)} distinct)" if len(values) > SHOWN_VALUES else "")
