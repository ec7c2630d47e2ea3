"""Keras model -> TensorFlow SavedModel with a `serving_default` signature and named outputs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._safe_write import SAVED_MODEL, staged_output
from keras_pvt.export.dense import DEFAULT_IGNORE_LABEL
from keras_pvt.export.errors import VerificationError
from keras_pvt.export.images import DEFAULT_VERIFY_IMAGES, verification_images
from keras_pvt.export.signature import INPUT_NAME, SIGNATURE_KEY, serving_function
from keras_pvt.export.verify import VerificationReport, verify_saved_model
from keras_pvt.images import parse_image_size
from keras_pvt.rewrites import Rewrite, rewritten


def input_spec(
    model: Any, image_size: int | Sequence[int] | None = None, batch_size: int | None = None
) -> Any:
    """The float32 NHWC `tf.TensorSpec` of the serving signature (None = dynamic dimension)."""
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be None (dynamic) or a positive int, got {batch_size!r}.")
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else (None, None, None, 3)
    if len(shape) != 4:
        raise ValueError(f"Export expects a model with one NHWC image input; its input is {shape}.")
    height, width, channels = shape[1:]
    size = parse_image_size(image_size)
    if size is not None:
        for axis, built, asked in (("height", height, size[0]), ("width", width, size[1])):
            if built is not None and built != asked:
                raise ValueError(
                    f"The model was built for input {axis} {built}, but `image_size` asks for "
                    f"{asked}; rebuild the model with input_shape=(None, None, {channels}) or "
                    "export at its own size."
                )
        height, width = size
    return tf.TensorSpec((batch_size, height, width, channels), tf.float32, name=INPUT_NAME)


def export_saved_model(
    model: Any,
    path: str | os.PathLike,
    *,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    kernel_table: Rewrite | None = None,
) -> str:
    """Write `model` as a SavedModel folder at `path` and return the path.

    The `serving_default` signature takes float32 NHWC ``images`` and returns a dict of named outputs
    (``predictions`` for a classifier, ``stage1`` ... ``stage4`` for a `features_only` model).

    Args:
        model: a Keras model with one NHWC image input (any keras-pvt builder output).
        path: output folder, written beside and renamed into place once complete.
        image_size: None keeps height and width dynamic; an int or (height, width) fixes them.
        batch_size: None keeps the batch dynamic; an int fixes it (e.g. 1 for edge runtimes).
        overwrite: replace a previous SavedModel export at `path`. Anything else there (a file,
            a folder that is not a SavedModel, the current folder) is never replaced:
            `OutputRefusedError`.
        kernel_table: the rewrite the graph is traced with (`keras_pvt.rewrites`); None = the
            plain model. Every rewrite computes the same maths to float32 round-off.

    The folder loads with plain ``tf.saved_model.load`` (no keras-pvt import needed).
    """
    spec = input_spec(model, image_size, batch_size)
    with staged_output(path, SAVED_MODEL, overwrite=overwrite) as stage:
        _write(model, stage, spec, kernel_table)
    return os.fspath(path)


def export_and_verify_saved_model(
    model: Any,
    path: str | os.PathLike,
    images: Any = None,
    *,
    image_size: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    num_images: int = DEFAULT_VERIFY_IMAGES,
    runs: int = 10,
    tolerance: float | None = None,
    min_top1: float | None = None,
    masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
    overwrite: bool = False,
) -> VerificationReport:
    """`export_saved_model`, then `verify_saved_model` before the folder appears at `path`.

    `images` are model-ready float32 images (default: `num_images` seeded random images at
    `image_size`, 224x224 when dynamic; raw pixels for a model that normalises itself). Returns the
    `VerificationReport`; a failed verification raises `VerificationError` and leaves `path` as it
    was. `overwrite`: as in `export_saved_model`.
    The bounds (`tolerance`: the largest relative error, `min_top1`, `min_pixel_agreement`; None =
    the SavedModel's default) and, for a segmenter, `masks` (ground truth of `images`), `dense`
    and `ignore_label` are those of `verify_saved_model`.
    """
    spec = input_spec(model, image_size, batch_size)
    if images is None:
        size = tuple(spec.shape[1:3]) if None not in spec.shape[1:3] else None
        images = verification_images(model, spec, size, num_images)
    with staged_output(path, SAVED_MODEL, overwrite=overwrite) as stage:
        _write(model, stage, spec)
        report = verify_saved_model(
            stage,
            model,
            images,
            runs=runs,
            tolerance=tolerance,
            min_top1=min_top1,
            masks=masks,
            min_pixel_agreement=min_pixel_agreement,
            dense=dense,
            ignore_label=ignore_label,
        )
        report.path = os.fspath(path)
        if not report.ok:
            raise VerificationError(
                report, "Verification of the SavedModel failed: " + " ".join(report.failures)
            )
    return report


def _write(model: Any, folder: Any, spec: Any, kernel_table: Rewrite | None = None) -> None:
    model = rewritten(model, kernel_table)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_KEY, serving_function(model), input_signature=[spec])
    archive.write_out(str(folder), verbose=False)
