"""Named output arrays of a converted model -> the structure `model(images)` returns, as TF tensors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_pvt._keras_private import outputs_structure
from keras_pvt.export.signature import output_names


class OutputStructure:
    """Rebuilds a model's output structure (one tensor, a list, or a dict such as `features_only`'s
    stage maps) from arrays keyed by the exported signature's output names (`output_names`)."""

    def __init__(self, model: keras.Model) -> None:
        self.names = output_names(model)
        structure = outputs_structure(model)
        if isinstance(structure, Mapping):
            self.kind = "dict"
        elif isinstance(structure, (list, tuple)) or (structure is None and len(self.names) > 1):
            self.kind = "list"
        else:
            self.kind = "single"

    def __call__(self, named: Mapping[str, np.ndarray]) -> Any:
        missing = [name for name in self.names if name not in named]
        if missing:
            raise RuntimeError(
                f"The converted model has no output named {missing} (it has {sorted(named)}); "
                "the engine cannot match its outputs to the Keras model's."
            )
        tensors = [tf.convert_to_tensor(named[name], tf.float32) for name in self.names]
        if self.kind == "dict":
            return dict(zip(self.names, tensors))
        if self.kind == "list":
            return tensors
        return tensors[0]
