"""The private Keras members keras-pvt relies on, each wrapped once here.

Checked against Keras 3.15.1. Keras has no public equivalent of these; if an upgrade breaks one,
this module is the only place to change.
"""

from __future__ import annotations

import keras


def nested_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`layer` and every layer nested inside it, at any depth (`Layer._flatten_layers`)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))
