"""ImageNet-1k helpers: the class count, offline label decoding and (from `keras_pvt.images`) the
input normalisation the ImageNet weights expect."""

from __future__ import annotations

import numbers
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from keras_pvt.images import IMAGENET_MEAN, IMAGENET_STD, normalization_stats, preprocess_input

__all__ = [
    "IMAGENET_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "decode_predictions",
    "imagenet_classes",
    "normalization_stats",
    "preprocess_input",
]

IMAGENET_CLASSES = 1000  # the classifier width of the ImageNet-1k weights


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ``(wordnet_id, name)`` pairs in model output order, from the shipped package data."""
    text = resources.files("keras_pvt").joinpath("assets/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    classes = tuple((wnid, name) for wnid, name in rows)
    if len(classes) != IMAGENET_CLASSES:
        raise RuntimeError(
            f"Package data imagenet_classes.tsv has {len(classes)} rows, not {IMAGENET_CLASSES}."
        )
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
    if preds.ndim != 2 or preds.shape[1] != IMAGENET_CLASSES:
        raise ValueError(
            "decode_predictions expects a batch of ImageNet-1k predictions, shape (batch, 1000); "
            f"got {preds.shape}. Use a model built with include_top=True and 1000 classes."
        )
    if isinstance(top, (bool, np.bool_)) or not isinstance(top, numbers.Integral) or top < 1:
        raise ValueError(f"`top` must be a positive integer, got {top!r}.")
    top = int(top)
    classes = imagenet_classes()
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(*classes[i], float(row[i])) for i in best])
    return results
