"""Overlapping patch embedding: a strided convolution with symmetric zero padding, then LayerNorm."""

from __future__ import annotations

from typing import Any

import keras

from keras_pvt.layers.initializers import conv_kernel_initializer
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.limits import check_arguments, check_parameters

PATCH_EMBED_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_pvt")
class OverlapPatchEmbed(keras.layers.Layer):
    """Conv(kernel `patch_size`, `stride`, zero padding `patch_size // 2` on every side) + LayerNorm.

    NHWC in, NHWC out with `embed_dim` channels. The padding is explicit and symmetric, as PyTorch's
    `padding=k // 2`; Keras' ``padding="same"`` would pad asymmetrically for strides 2 and 4.
    """

    def __init__(self, embed_dim: int, patch_size: int = 7, stride: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        args = check_arguments("OverlapPatchEmbed", locals())
        embed_dim, patch_size, stride = args.embed_dim, args.patch_size, args.stride
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.stride = stride
        self.pad = keras.layers.ZeroPadding2D(patch_size // 2, name="pad")
        self.proj = keras.layers.Conv2D(
            embed_dim,
            patch_size,
            strides=stride,
            padding="valid",
            kernel_initializer=conv_kernel_initializer(),
            name="proj",
        )
        self.norm = LayerNorm(epsilon=PATCH_EMBED_NORM_EPSILON, name="norm")

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1] or 0
        check_parameters(self.patch_size**2 * channels * self.embed_dim, f"OverlapPatchEmbed {self.name!r}")
        padded = self.pad.compute_output_shape(input_shape)
        self.proj.build(padded)
        self.norm.build(self.proj.compute_output_shape(padded))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.norm(self.proj(self.pad(inputs)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.proj.compute_output_shape(self.pad.compute_output_shape(input_shape))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "patch_size": self.patch_size,
            "stride": self.stride,
        }
