"""Images in keras-pvt: file suffixes, image sizes and the ImageNet normalisation, in one place.

The normalisation as a function (`preprocess_input`), as the layer `include_preprocessing=True`
puts in a model (`pixel_normalization`), and the test whether a model has it (`takes_raw_pixels`).

NumPy and `keras.ops` only; the `tf.data` transforms (`keras_pvt.data.preprocess`) and the image
loaders of the exports (`keras_pvt.export.images`) build on this module.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RGB_CHANNELS = 3
# Files `tf.io.decode_image` reads (export calibration and verification folders).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Files tensorflow-datasets' `ImageFolder` reads (training folders).
FOLDER_DATASET_SUFFIXES = (".jpg", ".jpeg", ".png")
# Tensor types whose values are unknown until a graph runs (Keras, TensorFlow graphs, JAX traces,
# PyTorch compile): `preprocess_input` does not look at their values.
SYMBOLIC_TENSOR_TYPES = ("KerasTensor", "SymbolicTensor", "Tracer", "FakeTensor", "Proxy")


class UnitRangeImagesWarning(UserWarning):
    """`preprocess_input` got float images whose values all lie in [0, 1]: likely scaled already,
    where pixels in [0, 255] are expected (the normalisation then gives wrong inputs)."""


_unit_range_warned = False  # the warning above is shown once per process


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
    return int(pair[0]), int(pair[1])


def _is_int(value: Any) -> bool:
    """An integer of any type (NumPy's too), never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def preprocess_input(
    x: Any,
    data_format: str | None = None,
    *,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    model: Any = None,
) -> Any:
    """Normalise images in [0, 255] the way the ImageNet PVT-v2 weights were trained.

    ``(x / 255 - mean) / std`` per channel ("torch" mode of `keras.applications`). Models built
    with the default ``include_preprocessing=False`` do not normalise internally: call this on
    images before `model.predict`. Pass ``model=`` to get what that model takes, so images are
    never normalised twice: a pass-through (float32, values unchanged) for a model that normalises
    itself (``include_preprocessing=True``, see `takes_raw_pixels`), else the normalisation; with
    ``model=``, NumPy images with values below 0 (normalised already) are refused. The statistics
    (see `normalization_stats`):

    * 3 channels (RGB): the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
    * any other count (grey, RGB-D, multispectral): the mean of those RGB values, 0.449 and 0.226,
      for every channel (timm's convention when the statistics do not fit the channel count). It
      suits models whose RGB first layer was adapted to C channels (`keras_pvt.checkpoints`);
    * `mean` / `std` given: those, as fractions of 255 like the ImageNet values (a number for every
      channel, or one value per channel), e.g. your own data's statistics.

    Args:
        x: NHWC (or HWC) images with values in [0, 255]: a NumPy array, a nested list or a backend
            tensor. Integer inputs are converted to float32.
        data_format: "channels_last" (the default and the only layout keras-pvt models take).
        mean, std: override of the per-channel statistics, in [0, 1] units.
        model: the keras-pvt model the images are for (see above).

    Returns:
        float32 images of the same shape: a NumPy array for NumPy/list input, otherwise a tensor.

    Float images whose values all lie in [0, 1] (and are not all 0) are most likely scaled to
    [0, 1] already: a `UnitRangeImagesWarning` says so, once per process. Integer images, and
    symbolic tensors (a `tf.data` map, a traced function) whose values are unknown, are not looked at.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"keras-pvt models take channels-last (NHWC) images; got data_format={data_format!r}. "
            "Transpose the batch to (N, H, W, C) first."
        )
    numpy_input = isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x)
    if numpy_input:
        x = np.asarray(x)
    _warn_if_unit_range(x)
    if numpy_input:
        x = np.asarray(x, dtype=np.float32)
    if model is not None:
        if numpy_input:
            _refuse_normalised(x)
        if takes_raw_pixels(model):
            if mean is not None or std is not None:
                raise ValueError(
                    f"Model {model.name!r} normalises its inputs itself (include_preprocessing=True) "
                    "with the statistics it was built with; `mean` / `std` would not be used. Drop "
                    "them, or build the model with include_preprocessing=False."
                )
            return x if numpy_input else ops.cast(x, "float32")
    shape = tuple(x.shape)
    _check_channels_last(shape, custom=mean is not None or std is not None)
    mean_01, std_01 = normalization_stats(shape[-1], mean=mean, std=std)
    scaled_mean, scaled_std = mean_01 * np.float32(255.0), std_01 * np.float32(255.0)
    if numpy_input:
        return (x - scaled_mean) / scaled_std
    x = ops.cast(x, "float32")
    return (x - ops.convert_to_tensor(scaled_mean)) / ops.convert_to_tensor(scaled_std)


def pixel_normalization(channels: int, name: str | None = None) -> keras.layers.Normalization:
    """The Keras layer computing `preprocess_input` for `channels`-channel images in [0, 255].

    A `keras.layers.Normalization` with the `normalization_stats` of `channels` scaled to pixel
    units (no weights: nothing to load from a checkpoint), as `include_preprocessing=True` puts
    at the start of a model. Statistics equal for every channel (any count but 3) are stored as
    one number, so the layer also takes an RGB twin of the model (`keras_pvt.checkpoints` builds one
    to load RGB Keras weight files).
    """
    mean_01, std_01 = normalization_stats(channels)
    mean, std = mean_01 * np.float32(255.0), std_01 * np.float32(255.0)
    variance = std.astype(np.float64) ** 2
    if channels != RGB_CHANNELS:
        return keras.layers.Normalization(
            axis=-1, mean=float(mean[0]), variance=float(variance[0]), name=name
        )
    return keras.layers.Normalization(axis=-1, mean=mean.tolist(), variance=variance.tolist(), name=name)


def takes_raw_pixels(model: Any) -> bool:
    """Whether `model` normalises its inputs itself: an integer input, or a Rescaling or
    Normalization layer (nested models included), as `include_preprocessing=True` adds."""
    inputs = getattr(model, "inputs", None) or []
    if inputs and keras.backend.standardize_dtype(inputs[0].dtype).startswith(("int", "uint")):
        return True
    preprocessing = (keras.layers.Rescaling, keras.layers.Normalization)
    return any(
        isinstance(layer, preprocessing) or (isinstance(layer, keras.Model) and takes_raw_pixels(layer))
        for layer in getattr(model, "layers", [])
    )


def _warn_if_unit_range(x: Any) -> None:
    """`UnitRangeImagesWarning` (once per process) for float images whose values all lie in [0, 1]."""
    global _unit_range_warned
    if _unit_range_warned or not _is_float(x) or not _has_known_values(x):
        return
    try:
        if not np.prod(x.shape):
            return
        if isinstance(x, np.ndarray):
            low, high = float(np.min(x)), float(np.max(x))
        else:
            low, high = (float(ops.convert_to_numpy(reduce(x))) for reduce in (ops.min, ops.max))
    except (TypeError, ValueError, RuntimeError, NotImplementedError):  # values unknown after all
        return
    if low >= 0.0 and 0.0 < high <= 1.0:
        _unit_range_warned = True
        warnings.warn(
            f"preprocess_input got float images with every value in [0, 1] (min {low:.3g}, max "
            f"{high:.3g}): they look scaled to [0, 1] already, but it expects pixels in [0, 255] "
            "(it divides by 255 itself), so the model would see nearly constant images. Pass the "
            "pixels unscaled (e.g. `images * 255`). This warning is shown once per process.",
            UnitRangeImagesWarning,
            stacklevel=3,
        )


def _is_float(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    try:
        return keras.backend.standardize_dtype(dtype).startswith(("float", "bfloat"))
    except ValueError:
        return False


def _has_known_values(x: Any) -> bool:
    """Whether `x` holds values now: a NumPy array or an eager tensor, not a symbolic or traced one."""
    return not any(cls.__name__.endswith(SYMBOLIC_TENSOR_TYPES) for cls in type(x).__mro__)


def _refuse_normalised(x: np.ndarray) -> None:
    """ValueError if NumPy images have values below 0: they are normalised already, not pixels."""
    if x.size and float(np.min(x)) < 0:
        raise ValueError(
            f"preprocess_input(..., model=...) got images with values down to {float(np.min(x)):.3g}: "
            "they look normalised already (pixels are in [0, 255]). Pass the raw pixels; "
            "normalising twice gives wrong predictions."
        )


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
