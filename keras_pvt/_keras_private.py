"""The private Keras members keras-pvt relies on, each wrapped once here.

Checked against Keras 3.15.1. Keras has no public equivalent of these; if an upgrade breaks one,
this module is the only place to change.
"""

from __future__ import annotations

from typing import Any

import keras


def nested_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`layer` and every layer nested inside it, at any depth (`Layer._flatten_layers`)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))


def outputs_structure(model: keras.Model) -> Any:
    """The nested structure (dict, list, tensor) the functional `model` was built with
    (`Functional._outputs_struct`), or None for other models."""
    return getattr(model, "_outputs_struct", None)


def build_training_state(model: keras.Model, element_spec: Any) -> None:
    """Build `model`'s weights, loss, metrics and optimizer from a data spec now
    (`Trainer._symbolic_build`), and stop `fit` from building them again from the first batch
    (`Trainer._maybe_symbolic_build` made a no-op on this instance)."""
    model._symbolic_build(data_batch=element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def resize_bilinear(images: Any, size: tuple[Any, Any]) -> Any:
    """`keras.ops.image.resize(images, size, "bilinear")` (half-pixel centres, no antialias) through
    the backend's own resize (`keras.src.backend.image.resize`): the public op tests
    ``size[0] <= 0`` in Python, which fails in a TensorFlow graph whose height and width are known
    only at run time (a SavedModel or TFLite export of any size)."""
    from keras.src import backend

    return backend.image.resize(images, size, interpolation="bilinear", antialias=False)
