"""The "xla" candidate of engine="measure": TensorFlow's whole-graph XLA path on the frozen copy.

One `compile_tensorflow` callable (engine "xla", on the snapshot the converting engines share),
made on first use. Building a shape costs nothing here: its trace and compilation happen on its
first call. Thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from keras_pvt.inference.tf_compile import compile_tensorflow


class TensorFlowEngine:
    """TensorFlow's "xla" engine as a per-shape engine; it converts nothing."""

    conversions = 0

    def __init__(self, name: str, model: keras.Model, checked_images: Callable[[Any], Any]) -> None:
        self.name, self._model, self._checked_images = name, model, checked_images
        self._run: Any = None

    def build(self, shape: tuple[int, ...]) -> Any:
        if self._run is None:
            # The copy is already a snapshot: reading its variables is reading the snapshot.
            self._run = compile_tensorflow(self._model, self.name, "float32", False, self._checked_images)
        return self._run
