"""The PVT-v2 transformer block and stage."""

from __future__ import annotations

from typing import Any

import keras

from keras_pvt.layers import fusion
from keras_pvt.layers.attention import SpatialReductionAttention
from keras_pvt.layers.drop_path import DropPath
from keras_pvt.layers.mlp import ConvMlp
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.layers.patch_embed import OverlapPatchEmbed

BLOCK_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_pvt")
class PVTBlock(keras.layers.Layer):
    """Pre-norm block: ``x + drop_path(attn(norm1(x)))`` then ``x + drop_path(mlp(norm2(x)))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        sr_ratio: int = 1,
        linear: bool = False,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.sr_ratio = sr_ratio
        self.linear = linear
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.drop_rate = drop
        self.attn_drop_rate = attn_drop
        self.drop_path_rate = drop_path

        self.norm1 = LayerNorm(epsilon=BLOCK_NORM_EPSILON, name="norm1")
        self.attn = SpatialReductionAttention(
            dim,
            num_heads,
            sr_ratio=sr_ratio,
            linear=linear,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop=attn_drop,
            proj_drop=drop,
            name="attn",
        )
        self.drop_path = DropPath(drop_path, name="drop_path")
        self.norm2 = LayerNorm(epsilon=BLOCK_NORM_EPSILON, name="norm2")
        self.mlp = ConvMlp(int(dim * mlp_ratio), dim, linear=linear, drop=drop, name="mlp")

    def build(self, input_shape: tuple) -> None:
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if fusion.active(training):
            x, h = fusion.add_norm(self.norm2, inputs, self.attn(fusion.layer_norm(self.norm1, inputs)))
            return x + self.mlp(h)
        x = inputs + self.drop_path(self.attn(self.norm1(inputs), training=training), training=training)
        return x + self.drop_path(self.mlp(self.norm2(x), training=training), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "sr_ratio": self.sr_ratio,
            "linear": self.linear,
            "qkv_bias": self.qkv_bias,
            "qk_scale": self.qk_scale,
            "drop": self.drop_rate,
            "attn_drop": self.attn_drop_rate,
            "drop_path": self.drop_path_rate,
        }


@keras.saving.register_keras_serializable(package="keras_pvt")
class PVTStage(keras.layers.Layer):
    """Overlapping patch embedding, `depth` blocks, then LayerNorm (eps 1e-6). NHWC in and out.

    `drop_path` gives one stochastic-depth rate per block.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        sr_ratio: int = 1,
        linear: bool = False,
        patch_size: int = 3,
        stride: int = 2,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        drop_path = list(drop_path) if drop_path is not None else [0.0] * depth
        if len(drop_path) != depth:
            raise ValueError(f"`drop_path` needs {depth} rates (one per block), got {len(drop_path)}.")
        self.dim = dim
        self.depth = depth
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.sr_ratio = sr_ratio
        self.linear = linear
        self.patch_size = patch_size
        self.stride = stride
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.drop_rate = drop
        self.attn_drop_rate = attn_drop
        self.drop_path_rates = [float(r) for r in drop_path]

        self.patch_embed = OverlapPatchEmbed(dim, patch_size, stride, name="patch_embed")
        self.blocks = [
            PVTBlock(
                dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                sr_ratio=sr_ratio,
                linear=linear,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=rate,
                name=f"block{j}",
            )
            for j, rate in enumerate(self.drop_path_rates)
        ]
        self.norm = LayerNorm(epsilon=BLOCK_NORM_EPSILON, name="norm")

    def build(self, input_shape: tuple) -> None:
        self.patch_embed.build(input_shape)
        shape = self.patch_embed.compute_output_shape(input_shape)
        for block in self.blocks:
            block.build(shape)
        self.norm.build(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.patch_embed(inputs)
        for block in self.blocks:
            x = block(x, training=training)
        if fusion.active(training):
            return fusion.layer_norm(self.norm, x)
        return self.norm(x)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.patch_embed.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "sr_ratio": self.sr_ratio,
            "linear": self.linear,
            "patch_size": self.patch_size,
            "stride": self.stride,
            "qkv_bias": self.qkv_bias,
            "qk_scale": self.qk_scale,
            "drop": self.drop_rate,
            "attn_drop": self.attn_drop_rate,
            "drop_path": self.drop_path_rates,
        }
