"""ImageNet-1k input normalisation and label decoding for PVT-v2 classifiers (fully offline)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_CLASSES = 1000


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Normalise RGB images in [0, 255] the way the ImageNet PVT-v2 weights were trained.

    ``(x / 255 - mean) / std`` per channel, with the ImageNet mean (0.485, 0.456, 0.406) and std
    (0.229, 0.224, 0.225) ("torch" mode of `keras.applications`). The models do NOT normalise
    internally: call this on images before `model.predict` when using ImageNet or converted
    PyTorch weights.

    Args:
        x: NHWC (or HWC) RGB images with values in [0, 255]: a NumPy array, a nested list or a
            backend tensor. Integer inputs are converted to float32.
        data_format: "channels_last" (the default and the only layout keras-pvt models take).

    Returns:
        float32 images of the same shape: a NumPy array for NumPy/list input, otherwise a tensor.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"keras-pvt models take channels-last (NHWC) images; got data_format={data_format!r}. "
            "Transpose the batch to (N, H, W, 3) first."
        )
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255.0
    std = np.asarray(IMAGENET_STD, dtype=np.float32) * 255.0
    if isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x):
        array = np.asarray(x, dtype=np.float32)
        _check_channels(array.shape)
        return (array - mean) / std
    from keras import ops

    _check_channels(tuple(x.shape))
    x = ops.cast(x, "float32")
    return (x - ops.convert_to_tensor(mean)) / ops.convert_to_tensor(std)


def _check_channels(shape: tuple) -> None:
    if not shape or shape[-1] != 3:
        raise ValueError(f"preprocess_input expects RGB images with 3 channels last, got shape {shape}.")


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
