"""What the training of every task does to its model the same way: load the starting weights into a
model with a head (the whole model, else its backbone) and compile it for a run with the recipe."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import keras

from keras_pvt.checkpoints import CheckpointMismatchError
from keras_pvt.rewrites.training import rewrite_for_training
from keras_pvt.training.options import RunOptions


def build_whole_or_backbone(
    make: Callable[..., keras.Model],
    weights: str | None,
    whole: str,
    *,
    backbone_fallback: bool = True,
) -> tuple[keras.Model, str]:
    """``make(weights=weights)``, the whole model (a `whole`: "segmenter", "detector") loaded, or
    when `weights` is not one, ``make(backbone_weights=weights)``; with what `weights` filled:
    `whole`, "backbone" or "none" (`weights` None: ``make()``). `backbone_fallback` False: `weights`
    must be a whole model (the backbone's weights are given apart). Keras' warnings while trying
    the whole model (e.g. the containers a classifier's file lacks) are shown only if it loads."""
    if weights is None:
        return make(), "none"
    try:
        with warnings.catch_warnings(record=True) as caught:  # kept only if the whole model loads
            warnings.simplefilter("always")
            model = make(weights=weights)
    except (CheckpointMismatchError, FileNotFoundError, ValueError) as error:
        if not backbone_fallback:
            raise ValueError(
                f"--weights {weights!r} is not a whole {whole} ({str(error)[:400]}); with the "
                "backbone's weights given apart (--backbone-weights), --weights must be one."
            ) from error
        try:
            return make(backbone_weights=weights), "backbone"
        except (FileNotFoundError, ValueError) as part:
            raise ValueError(
                f"--weights {weights!r} fits neither the whole {whole} ({str(error)[:400]}) nor "
                f"its backbone ({str(part)[:400]})."
            ) from part
    for warning in caught:
        warnings.warn(warning.message, warning.category, stacklevel=2)
    return model, whole


def compile_for_run(
    model: keras.Model, recipe: Any, run: RunOptions, batch_size: int, steps: int, **compile_args: Any
) -> keras.Model:
    """`model` with the training rewrite (XLA GELU and LayerNorm while the step is traced), compiled
    with `recipe`'s optimizer for `run`'s epochs of `steps` steps and `compile_args` (loss,
    metrics); returns `model`."""
    rewrite_for_training(model)
    model.compile(
        optimizer=recipe.optimizer(model, batch_size, steps, run.epochs),
        jit_compile=run.jit_compile,
        **compile_args,
    )
    return model
