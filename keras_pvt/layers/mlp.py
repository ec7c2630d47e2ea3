"""The convolutional feed-forward network of PVT-v2 (MLP with a depthwise 3x3 conv)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_pvt.layers.activations import exact_gelu
from keras_pvt.layers.initializers import conv_kernel_initializer, dense_kernel_initializer
from keras_pvt.limits import check_arguments, check_parameters


@keras.saving.register_keras_serializable(package="keras_pvt")
class ConvMlp(keras.layers.Layer):
    """fc1 -> (ReLU if `linear`) -> depthwise 3x3 conv with bias -> exact GELU -> dropout -> fc2 -> dropout.

    NHWC in and out. The depthwise conv has stride 1 and an odd kernel, so ``padding="same"`` pads one
    pixel on every side: the same symmetric zero padding as the reference's ``padding=1``.
    """

    def __init__(
        self,
        hidden_dim: int,
        out_dim: int,
        linear: bool = False,
        drop: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        args = check_arguments("ConvMlp", locals())
        check_parameters((2 * args.out_dim + 9) * args.hidden_dim, f"ConvMlp {self.name!r}")
        hidden_dim, out_dim, drop = args.hidden_dim, args.out_dim, args.drop
        self.hidden_dim = hidden_dim
        self.out_dim = out_dim
        self.linear = args.linear
        self.drop_rate = drop
        dense = {"kernel_initializer": dense_kernel_initializer()}
        self.fc1 = keras.layers.Dense(hidden_dim, name="fc1", **dense)
        self.dwconv = keras.layers.DepthwiseConv2D(
            3, padding="same", depthwise_initializer=conv_kernel_initializer(), name="dwconv"
        )
        self.drop = keras.layers.Dropout(drop, name="drop")
        self.fc2 = keras.layers.Dense(out_dim, name="fc2", **dense)

    def build(self, input_shape: tuple) -> None:
        hidden_shape = (*input_shape[:-1], self.hidden_dim)
        self.fc1.build(input_shape)
        self.dwconv.build(hidden_shape)
        self.fc2.build(hidden_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.fc1(inputs)
        if self.linear:
            x = ops.relu(x)
        x = self.drop(exact_gelu(self.dwconv(x)), training=training)
        return self.drop(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.out_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "out_dim": self.out_dim,
            "linear": self.linear,
            "drop": self.drop_rate,
        }
