"""Making `model.fit` work under `tf.distribute.MultiWorkerMirroredStrategy` with Keras 3.

Keras 3.15 has two gaps there (keras-team/keras#20585): `fit` builds the model from a cross-worker
reduce of the first batch (which fails on `PerReplica` inputs), and it reduces the scalar step
logs with ``strategy.reduce("MEAN", v, axis=0)`` (which fails on scalars). `prepare` builds all
state from the data spec up front and gives the step logs a length-1 axis, so that reduction
averages them over replicas. Only the model instance passed in is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keras_private import build_training_state


def prepare(model: keras.Model, element_spec: Any) -> None:
    """Build `model`'s weights, loss, metrics and optimizer from `element_spec` (call under the
    strategy scope, after `compile`) and patch its train/test steps as described above."""
    build_training_state(model, element_spec)
    model.train_step = _with_replica_axis(model.train_step)
    model.test_step = _with_replica_axis(model.test_step)


def _with_replica_axis(step: Callable[[Any], dict]) -> Callable[[Any], dict]:
    def wrapped(data: Any) -> dict:
        logs = step(data)
        return {name: tf.reshape(value, (-1,)) for name, value in logs.items()}

    return wrapped
