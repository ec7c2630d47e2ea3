"""Checks of an image batch before a model runs: rank, channels, dtype and the minimum size.

Pure Python on shapes and dtype names, shared by the model's `ImageSizeCheck` layer, by
`compile_inference` and by `keras-pvt export`, so that every path refuses with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INTEGER_DTYPE_PREFIXES = ("int", "uint", "bool")


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
    if len(shape) != 4 or (channels is not None and shape[-1] not in (None, channels)):
        raise ValueError(
            f"Expected a batch of NHWC images of shape {expected}, got shape {shape} ({dtype}). "
            + ("Add a batch axis (images[None]) for one image. " if len(shape) == 3 else "")
            + "Images must be channels-last."
        )
    if not raw_pixels_ok and dtype.startswith(INTEGER_DTYPE_PREFIXES):
        raise ValueError(
            f"Got {dtype} images of shape {shape}, but this model has no preprocessing inside: it "
            "expects float32 images normalised like its training data. Integer pixels (0-255) passed "
            "as they are give wrong predictions. Call keras_pvt.preprocess_input(images) first (it "
            "takes 0-255 RGB pixels), or cast to float32 after your own normalisation."
        )
    if minimum is not None:
        check_image_size(shape[1], shape[2], minimum)


def dtype_name(dtype: Any) -> str:
    """ "uint8", "float32", ... for a NumPy, TensorFlow or Keras dtype."""
    return getattr(dtype, "name", None) or str(dtype)
