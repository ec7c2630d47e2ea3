"""The serving signature every export has: its name, its input's name and the model's named outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_pvt._keras_private import outputs_structure

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"


def output_names(model: Any) -> list[str]:
    """Names of the model's outputs in the exported signature (dict keys or output layer names)."""
    structure = outputs_structure(model)
    if isinstance(structure, Mapping):
        return list(structure)
    names = list(getattr(model, "output_names", []) or [])
    return names or [f"output_{i}" for i in range(len(model.outputs))]


def serving_function(model: Any) -> Any:
    """`images -> {name: tensor}`: the model in inference mode, outputs always keyed by name."""
    names = output_names(model)

    def serve(images: Any) -> dict[str, Any]:
        outputs = model(images, training=False)
        if isinstance(outputs, Mapping):
            return {name: outputs[name] for name in names}
        if isinstance(outputs, (list, tuple)):
            return dict(zip(names, outputs))
        return {names[0]: outputs}

    return serve
