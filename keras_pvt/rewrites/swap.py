"""Rewrites: a model's layers swapped for target-specific equivalents that hold the same weights.

A `Rewrite` maps layer classes to subclasses that only override `call` (the same maths in the form a
target's compiler runs fastest) and hold no state of their own; a rewrite may also move weights in
its copy (`Rewrite.adjust`). `rewritten` applies one to a private
copy of a model (rebuilt from its config, its weights copied); the caller's model is never changed.
Every rewrite equals the plain model to float32 round-off (tests/test_rewrites.py).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras

from keras_pvt._keras_private import nested_layers


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """`classes` maps a layer class (and its subclasses, e.g. the training rewrite's) to its
    replacement; `applies` (optional) says whether a layer of such a class takes the replacement
    (e.g. only 3x3 stride-1 convolutions); `adjust` (optional) then moves weights of the private
    copy where the replacements expect them (e.g. a LayerNorm's affine folded into the layers that
    read it), keeping the outputs to float32 round-off."""

    name: str
    classes: Mapping[type, type]
    applies: Callable[[Any], bool] = lambda layer: True
    adjust: Callable[[keras.Model], None] | None = None

    def replacement(self, layer: Any) -> type | None:
        """The class `layer` takes under this rewrite, or None when it keeps its own."""
        for cls in type(layer).__mro__:
            if cls in self.classes:
                new = self.classes[cls]
                return None if new is type(layer) or not self.applies(layer) else new
        return None

    def targets(self, model: keras.Model) -> list[Any]:
        """The layers of `model` (nested ones included) this rewrite replaces."""
        return [layer for layer in nested_layers(model) if self.replacement(layer) is not None]


def swap_in_place(model: keras.Model, rewrite: Rewrite) -> int:
    """Give each layer of `model` that `rewrite` targets its replacement class; the number swapped.

    Only for a model nobody else holds (a copy made by `rewritten`): the replacement classes keep the
    layers' variables, configs and names, so weights and `get_config` are unchanged.
    """
    targets = rewrite.targets(model)
    for layer in targets:
        layer.__class__ = rewrite.replacement(layer)
    return len(targets)


def rewritten(model: keras.Model, rewrite: Rewrite | None) -> keras.Model:
    """A copy of `model` with `rewrite` applied and a copy of its current weights; `model` itself when
    there is nothing to rewrite (no rewrite, no layer it targets) or, with a warning, when the model
    cannot be rebuilt from its config (a rewrite changes speed, never values)."""
    if rewrite is None or not rewrite.targets(model):
        return model
    try:
        copy = model.__class__.from_config(model.get_config())
    except Exception as error:  # any failure to rebuild: run the model as it is
        warnings.warn(
            f"The {rewrite.name!r} rewrite needs {type(model).__name__}.from_config, which failed "
            f"({error}); running the model without it (same outputs, slower).",
            RuntimeWarning,
            stacklevel=2,
        )
        return model
    copy.set_weights(model.get_weights())
    swap_in_place(copy, rewrite)
    if rewrite.adjust is not None:
        rewrite.adjust(copy)
    return copy
