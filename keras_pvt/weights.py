"""Resolving the `weights=` argument of the builders."""

from __future__ import annotations

from typing import Any

from keras_pvt.config import PVTV2Config


def load_weights(
    model: Any, weights: str, config: PVTV2Config, variant: str | None = None
) -> None:
    """Load `weights` ("imagenet" or a checkpoint path) into `model`."""
    raise NotImplementedError(
        f"weights={weights!r}: checkpoint loading is not available in this version; "
        "build with weights=None."
    )
