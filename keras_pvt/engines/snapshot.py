"""A private copy of a model with its weights as they are now: what the converting engines convert."""

from __future__ import annotations

import keras


def frozen_copy(model: keras.Model) -> keras.Model:
    """`model` rebuilt from its config, holding a copy of its current weights (float32).

    The converting engines (LiteRT, OpenVINO) convert each new input shape later, from this copy:
    the outputs of every shape are those of the weights at `compile_inference` time, whatever
    happens to `model` since (as with ``freeze_weights=True`` on TensorFlow).
    """
    try:
        copy = model.__class__.from_config(model.get_config())
    except Exception as error:  # any failure to rebuild: the engines cannot snapshot this model
        raise ValueError(
            f"engine='litert', 'openvino' and 'measure' convert a copy of the model rebuilt from its "
            f"config, but {type(model).__name__}.from_config failed ({error}); register the "
            "model's custom layers (keras.saving.register_keras_serializable), or use "
            "engine='xla'."
        ) from error
    copy.set_weights(model.get_weights())
    return copy
