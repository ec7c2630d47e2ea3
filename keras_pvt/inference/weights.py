"""The weights a compiled model runs on: the model's variables read on every call, or a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

Weights = tuple[list[Any], list[Any]]


def weights_source(model: keras.Model, freeze: bool, copy: Callable[[Any], Any]) -> Callable[[], Weights]:
    """A function returning (trainable, non-trainable) values of `model`'s variables: a snapshot
    taken now with `copy` when `freeze`, else the variables' current values at each call."""
    if freeze:
        snapshot = (
            [copy(v.value) for v in model.trainable_variables],
            [copy(v.value) for v in model.non_trainable_variables],
        )
        return lambda: snapshot

    def live() -> Weights:
        return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]

    return live


def check_same_variables(model: keras.Model, runner: keras.Model) -> None:
    """RuntimeError unless `runner` (a rewritten copy of `model`) has `model`'s variable shapes, in order."""
    for ours, theirs in (
        (model.trainable_variables, runner.trainable_variables),
        (model.non_trainable_variables, runner.non_trainable_variables),
    ):
        if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
            raise RuntimeError(
                f"The rewritten copy of {model.name!r} does not hold its variables in the same order; "
                "use engine='plain'."
            )
