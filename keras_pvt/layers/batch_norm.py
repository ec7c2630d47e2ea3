"""`SyncBatchNormalization`: mmseg's SyncBN, portable between Keras backends."""

from __future__ import annotations

from typing import Any

import keras

# PyTorch's BatchNorm2d defaults (mmcv's SyncBN): running stats updated with momentum 0.1, i.e. a
# Keras momentum of 0.9; eps 1e-5.
TORCH_MOMENTUM = 0.9
TORCH_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_pvt")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization with PyTorch's momentum and epsilon, synchronised across replicas.

    Under `tf.distribute` the batch statistics are computed over the global batch (mmseg's SyncBN);
    Keras offers that on the TensorFlow backend only, so on the others the layer is an ordinary
    BatchNormalization. The flag is not saved: a `.keras` file loads on every backend.
    """

    def __init__(self, momentum: float = TORCH_MOMENTUM, epsilon: float = TORCH_EPSILON, **kwargs: Any):
        kwargs.pop("synchronized", None)
        synchronized = keras.backend.backend() == "tensorflow"
        super().__init__(momentum=momentum, epsilon=epsilon, synchronized=synchronized, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("synchronized", None)
        return config
