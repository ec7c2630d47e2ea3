"""The "xla" and "segments" candidates of engine="auto": TensorFlow's compiled paths on a snapshot.

Both come from one `compile_tensorflow` callable with ``freeze_weights=True`` (one snapshot of the
weights, the Dense kernels stored transposed), each running its path at every size ("segments"
taking its query-pieces form above 512x512, as `strategy="segments"` does). Building a shape costs
nothing here: its trace (and, for XLA, its compilation) happens on its first call. Thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from keras_pvt.kernels.inference import tensorflow_path
from keras_pvt.kernels.tf_inference import compile_tensorflow


class TensorFlowPaths:
    """The compiled TensorFlow paths of one frozen model, made once on first use."""

    def __init__(self, model: keras.Model, checked_images: Callable[[Any], Any]) -> None:
        self._model, self._checked_images = model, checked_images
        self._paths: dict[str, Any] | None = None

    def path(self, name: str) -> Any:
        if self._paths is None:
            compiled = compile_tensorflow(
                self._model, "float32", "auto", True, self._checked_images, lambda shape: "xla"
            )
            self._paths = compiled.paths  # type: ignore[attr-defined]
        return self._paths[name]


class TensorFlowEngine:
    """One TensorFlow path ("xla" or "segments") as a per-shape engine; it converts nothing."""

    conversions = 0

    def __init__(self, name: str, paths: TensorFlowPaths) -> None:
        self.name, self._paths = name, paths

    def build(self, shape: tuple[int, ...]) -> Any:
        return self._paths.path(tensorflow_path(self.name, shape))
