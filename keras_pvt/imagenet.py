"""ImageNet-1k input normalisation (any channel count) and label decoding for PVT-v2 (fully offline)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RGB_CHANNELS = 3
NUM_CLASSES = 1000


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
    from keras import ops

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


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ``(wordnet_id, name)`` pairs in model output order, from the shipped package data."""
    text = resources.files("keras_pvt").joinpath("assets/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    classes = tuple((wnid, name) for wnid, name in rows)
    if len(classes) != NUM_CLASSES:
        raise RuntimeError(f"Package data imagenet_classes.tsv has {len(classes)} rows, not 1000.")
    return classes


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The `top` ImageNet classes of each row of `preds`, as `keras.applications` returns them.

    Args:
        preds: (batch, 1000) probabilities or logits (NumPy array or tensor).
        top: how many classes to return per image.

    Returns:
        One list per image of ``(wordnet_id, class_name, score)`` tuples, best first. No download:
        the class names ship with the package.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError(
            "decode_predictions expects a batch of ImageNet-1k predictions, shape (batch, 1000); "
            f"got {preds.shape}. Use a model built with include_top=True and 1000 classes."
        )
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive integer, got {top!r}.")
    classes = imagenet_classes()
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(*classes[i], float(row[i])) for i in best])
    return results
