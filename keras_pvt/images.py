"""Images in keras-pvt: file suffixes, image sizes and the ImageNet normalisation, in one place.

NumPy and `keras.ops` only; the `tf.data` transforms (`keras_pvt.data.preprocess`) and the image
loaders of the exports (`keras_pvt.export.images`) build on this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RGB_CHANNELS = 3
# Files `tf.io.decode_image` reads (export calibration and verification folders).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Files tensorflow-datasets' `ImageFolder` reads (training folders).
FOLDER_DATASET_SUFFIXES = (".jpg", ".jpeg", ".png")


def parse_image_size(size: str | int | Sequence[int] | None) -> tuple[int, int] | None:
    """``"224"``, ``"192x256"``, an int side or (height, width) -> (height, width); None stays None.

    ValueError unless every side is a positive int.
    """
    if size is None:
        return None
    value: Any = size
    if isinstance(size, str):
        try:
            value = [int(part) for part in size.lower().replace(",", "x").split("x")]
        except ValueError:
            raise ValueError(f"Image size {size!r} must be 'SIZE' or 'HEIGHTxWIDTH'.") from None
    if _is_int(value):
        value = (value, value)
    elif isinstance(value, list) and len(value) == 1:  # "224"
        value = (value[0], value[0])
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(side) and side > 0 for side in pair):
        raise ValueError(f"`image_size` must be a positive int or (height, width), got {size!r}.")
    return pair  # type: ignore[return-value]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def preprocess_input(
    x: Any,
    data_format: str | None = None,
    *,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> Any:
    """Normalise images in [0, 255] the way the ImageNet PVT-v2 weights were trained.

    ``(x / 255 - mean) / std`` per channel ("torch" mode of `keras.applications`). The models do NOT
    normalise internally: call this on images before `model.predict` when using ImageNet or
    converted PyTorch weights. The statistics (see `normalization_stats`):

    * 3 channels (RGB): the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
    * any other count (grey, RGB-D, multispectral): the mean of those RGB values, 0.449 and 0.226,
      for every channel (timm's convention when the statistics do not fit the channel count). It
      suits models whose RGB first layer was adapted to C channels (`keras_pvt.weights`);
    * `mean` / `std` given: those, as fractions of 255 like the ImageNet values (a number for every
      channel, or one value per channel), e.g. your own data's statistics.

    Args:
        x: NHWC (or HWC) images with values in [0, 255]: a NumPy array, a nested list or a backend
            tensor. Integer inputs are converted to float32.
        data_format: "channels_last" (the default and the only layout keras-pvt models take).
        mean, std: override of the per-channel statistics, in [0, 1] units.

    Returns:
        float32 images of the same shape: a NumPy array for NumPy/list input, otherwise a tensor.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"keras-pvt models take channels-last (NHWC) images; got data_format={data_format!r}. "
            "Transpose the batch to (N, H, W, C) first."
        )
    numpy_input = isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x)
    if numpy_input:
        x = np.asarray(x, dtype=np.float32)
    shape = tuple(x.shape)
    _check_channels_last(shape, custom=mean is not None or std is not None)
    mean_01, std_01 = normalization_stats(shape[-1], mean=mean, std=std)
    scaled_mean, scaled_std = mean_01 * np.float32(255.0), std_01 * np.float32(255.0)
    if numpy_input:
        return (x - scaled_mean) / scaled_std
    x = ops.cast(x, "float32")
    return (x - ops.convert_to_tensor(scaled_mean)) / ops.convert_to_tensor(scaled_std)


def normalization_stats(
    channels: int,
    *,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel ``(mean, std)`` (float32, [0, 1] units) `preprocess_input` uses.

    ImageNet's RGB statistics for 3 channels, their channel mean for any other count, or the given
    `mean` / `std` (a number, or one value per channel; std > 0).
    """
    if channels == RGB_CHANNELS:
        default_mean, default_std = IMAGENET_MEAN, IMAGENET_STD
    else:
        default_mean, default_std = float(np.mean(IMAGENET_MEAN)), float(np.mean(IMAGENET_STD))
    mean_values = _per_channel("mean", default_mean if mean is None else mean, channels)
    std_values = _per_channel("std", default_std if std is None else std, channels)
    if not (std_values > 0).all():
        raise ValueError(f"`std` must be positive for every channel, got {std!r}.")
    return mean_values, std_values


def _per_channel(name: str, value: float | Sequence[float], channels: int) -> np.ndarray:
    values = np.asarray(value, dtype=np.float32).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, channels)
    if values.size != channels or not np.isfinite(values).all():
        raise ValueError(
            f"`{name}` must be a finite number or {channels} finite values (one per channel of "
            f"the images, in [0, 1] units), got {value!r}."
        )
    return values


def _check_channels_last(shape: tuple, custom: bool) -> None:
    """ValueError unless `shape` has a known channel axis last (not a channels-first RGB batch)."""
    if not shape or shape[-1] is None or shape[-1] < 1:
        raise ValueError(
            f"preprocess_input expects images with a known channel count on the last axis (HWC or "
            f"NHWC), got shape {shape}."
        )
    looks_channels_first = len(shape) >= 3 and shape[-3] == RGB_CHANNELS and shape[-1] > 4
    if looks_channels_first and not custom:
        raise ValueError(
            f"preprocess_input got shape {shape}: 3 on axis -3 and {shape[-1]} channels last looks "
            "like channels-first RGB (N, 3, H, W). keras-pvt takes channels-last images: transpose "
            f"to (N, H, W, 3). For {shape[-1]}-channel images 3 pixels high, pass `mean=` and `std=`."
        )
