"""Checks of an image batch before a model runs: rank, channels, dtype, an empty batch and the
minimum size.

Pure Python on shapes and dtype names (never the values: a message must not dump the images),
shared by the model's `ImageSizeCheck` layer, by `compile_inference` and by `keras-pvt export`, so
that every path refuses with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

INTEGER_DTYPE_PREFIXES = ("int", "uint", "bool")
IMAGE_BATCH_RANK = 4  # NHWC


def minimum_size_advice(minimum: int) -> str:
    """The shared sentence: what the model needs and how to fix the images."""
    return (
        f"this PVT-v2 needs images of at least {minimum}x{minimum} pixels (height and width each >= "
        f"{minimum}: below that a spatial-reduction conv is wider than its feature map and the "
        f"outputs are meaningless). Resize or pad the images to at least {minimum}x{minimum}."
    )


def check_image_size(height: int | None, width: int | None, minimum: int) -> None:
    """ValueError if a known (not None) height or width is below `minimum`."""
    if any(size is not None and size < minimum for size in (height, width)):
        shown = "x".join("?" if size is None else str(size) for size in (height, width))
        raise ValueError(f"Images of {shown} pixels are too small: " + minimum_size_advice(minimum))


def check_image_batch(
    shape: Sequence[int | None],
    dtype: str,
    *,
    channels: int | None,
    minimum: int | None,
    raw_pixels_ok: bool = False,
) -> None:
    """One clear ValueError for a batch the model cannot take; names the shape, dtype and the fix.

    Args:
        shape: the batch's shape (never its values: a message must not dump the tensor).
        dtype: its dtype name ("float32", "uint8", ...).
        channels: the channel count the model takes (None: any).
        minimum: the smallest height and width the model takes (None: no limit known).
        raw_pixels_ok: the model normalises inside (a Rescaling/Normalization layer or an integer
            input), so integer pixels are fine.
    """
    shape = tuple(shape)
    expected = f"(batch, height, width, {channels if channels is not None else 'channels'})"
    if len(shape) != IMAGE_BATCH_RANK:
        raise ValueError(
            f"Expected a batch of NHWC images of shape {expected}, got shape {shape} ({dtype}). "
            + ("Add a batch axis (images[None]) for one image. " if len(shape) == 3 else "")
            + "Images must be channels-last."
        )
    check_image_channels(shape, channels, dtype)
    check_not_empty(shape)
    if not raw_pixels_ok and dtype.startswith(INTEGER_DTYPE_PREFIXES):
        raise ValueError(
            f"Got {dtype} images of shape {shape}, but this model has no preprocessing inside: it "
            "expects float32 images normalised like its training data. Integer pixels (0-255) passed "
            "as they are give wrong predictions. Call keras_pvt.preprocess_input(images) first (it "
            "takes 0-255 RGB pixels), or cast to float32 after your own normalisation."
        )
    if minimum is not None:
        check_image_size(shape[1], shape[2], minimum)


def check_image_channels(shape: Sequence[int | None], channels: int | None, dtype: str = "float32") -> None:
    """ValueError if an NHWC batch's known channel count is not the `channels` the model takes."""
    shape = tuple(shape)
    got = shape[-1]
    if channels is None or got is None or got == channels:
        return
    expected = f"(batch, height, width, {channels})"
    if shape[1] == channels:
        fix = "These look channels-first (N, C, H, W): transpose them to (N, H, W, C)."
    else:
        fix = (
            f"Convert the images to {channels} channel(s) (e.g. {_conversion(got, channels)}), or "
            f"build the model for {got}-channel images (input_shape=(None, None, {got}))."
        )
    raise ValueError(
        f"Expected a batch of NHWC images of shape {expected}, got shape {shape} ({dtype}): the "
        f"model takes {channels}-channel images, these have {got} channels. Images must be "
        f"channels-last. {fix}"
    )


def check_not_empty(shape: Sequence[int | None]) -> None:
    """ValueError for a batch of no images (a known batch size of 0)."""
    if tuple(shape)[:1] == (0,):
        raise ValueError(
            f"Got an empty batch (shape {tuple(shape)}): there are no images to run. Skip the call "
            "when the batch is empty."
        )


def require_image_batches(model: keras.Model) -> keras.Model:
    """`model`, its input declared rank 4 (NHWC): Keras then refuses another rank naming the shape.

    Without it Keras adds or drops a last axis of size 1 silently (an (H, W, 1) image became H
    images of width 1) and, for other ranks, prints the whole image array in its error. A fixed
    height and width stay required; the channel count is left to `ImageSizeCheck`, whose message
    says how to convert the images.
    """
    if len(model.inputs) == 1 and len(model.inputs[0].shape) == IMAGE_BATCH_RANK:
        shape = (None, *model.inputs[0].shape[1:3], None)
        model.input_spec = keras.InputSpec(shape=shape, name=model.inputs[0].name)
    return model


def _conversion(got: int, channels: int) -> str:
    if got == 3 and channels == 1:
        return "RGB to grey: images.mean(axis=-1, keepdims=True)"
    if got == 1:
        return f"grey to {channels} channels: np.repeat(images, {channels}, axis=-1)"
    if got > channels:
        return f"keep {channels} of them: images[..., :{channels}]"
    return f"append {channels - got} channel(s): np.concatenate([images, extra], axis=-1)"


def dtype_name(dtype: Any) -> str:
    """ "uint8", "float32", ... for a NumPy, TensorFlow or Keras dtype."""
    return getattr(dtype, "name", None) or str(dtype)
