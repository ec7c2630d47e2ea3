"""`ImageSizeCheck`: the model's first layer, refusing images below the architecture's minimum size
(and, where known when called, another channel count than the model's or an empty batch)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.input_checks import (
    check_image_channels,
    check_image_size,
    check_not_empty,
    minimum_size_advice,
)
from keras_pvt.limits import check_arguments
from keras_pvt.runtime_checks import assert_min_image_size


@keras.saving.register_keras_serializable(package="keras_pvt")
class ImageSizeCheck(keras.layers.Layer):
    """Identity on NHWC images that refuses a height or width below `min_size`.

    Below `PVTV2Config.min_input_size()` a PVT-v2 silently returns garbage or NaN. Sizes known when
    the model is built, called eagerly or traced raise `ValueError` then; sizes known only at run
    time (TensorFlow graphs with None dims) fail the run with the same message
    (`keras_pvt.runtime_checks`). XLA and TFLite drop that assertion: check
    the size before calling such a compiled function (`compile_inference` does).

    A channel count other than the one the layer was built for, and an empty batch, known when
    called, raise `ValueError` too (not TensorFlow's error from the first convolution).
    """

    def __init__(self, min_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_size = check_arguments("ImageSizeCheck", locals()).min_size
        self.channels: int | None = None  # the model's channel count, known once built

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1] if len(input_shape) == 4 else None
        self.channels = channels if isinstance(channels, int) else None

    def call(self, inputs: Any) -> Any:
        shape = tuple(dim if isinstance(dim, int) else None for dim in ops.shape(inputs))
        check_image_channels(shape, self.channels, keras.backend.standardize_dtype(inputs.dtype))
        check_not_empty(shape)
        static = list(shape[1:3])
        check_image_size(*static, self.min_size)
        if None not in static:
            return inputs
        message = "Images are too small: " + minimum_size_advice(self.min_size)
        return assert_min_image_size(inputs, self.min_size, message)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        check_image_size(input_shape[1], input_shape[2], self.min_size)
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "min_size": self.min_size}


def model_min_image_size(model: keras.Model) -> int | None:
    """The largest `min_size` of the `ImageSizeCheck` layers in `model` (nested models too), or None."""
    sizes = []
    for layer in model.layers:
        if isinstance(layer, ImageSizeCheck):
            sizes.append(layer.min_size)
        elif isinstance(layer, keras.Model):
            sizes.append(model_min_image_size(layer) or 0)
    return max(sizes, default=0) or None


def check_model_image_size(model: keras.Model, size: tuple[int, int] | None) -> None:
    """ValueError (the model's own message) if a fixed (height, width) is below `model`'s minimum."""
    minimum = model_min_image_size(model)
    if size is not None and minimum is not None:
        check_image_size(*size, minimum)
