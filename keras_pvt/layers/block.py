"""The PVT-v2 transformer block and stage."""

from __future__ import annotations

from typing import Any

import keras

from keras_pvt.layers.attention import SpatialReductionAttention
from keras_pvt.layers.drop_path import DropPath
from keras_pvt.layers.mlp import ConvMlp
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.layers.patch_embed import OverlapPatchEmbed
from keras_pvt.limits import block_parameters, check_arguments, check_parameters

BLOCK_NORM_EPSILON = 1e-6
# The PVTStage arguments that every block of the stage takes as they are.
SHARED_BLOCK_ARGUMENTS = ("mlp_ratio", "sr_ratio", "linear", "qkv_bias", "qk_scale", "drop", "attn_drop")


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
        args = check_arguments("PVTBlock", locals())
        self.dim = args.dim
        self.num_heads = args.num_heads
        self.mlp_ratio = args.mlp_ratio
        self.sr_ratio = args.sr_ratio
        self.linear = args.linear
        self.qkv_bias = args.qkv_bias
        self.qk_scale = args.qk_scale
        self.drop_rate = args.drop
        self.attn_drop_rate = args.attn_drop
        self.drop_path_rate = args.drop_path

        self.norm1 = LayerNorm(epsilon=BLOCK_NORM_EPSILON, name="norm1")
        self.attn = SpatialReductionAttention(
            args.dim,
            args.num_heads,
            sr_ratio=args.sr_ratio,
            linear=args.linear,
            qkv_bias=args.qkv_bias,
            qk_scale=args.qk_scale,
            attn_drop=args.attn_drop,
            proj_drop=args.drop,
            name="attn",
        )
        self.drop_path = DropPath(args.drop_path, name="drop_path")
        self.norm2 = LayerNorm(epsilon=BLOCK_NORM_EPSILON, name="norm2")
        hidden = int(args.dim * args.mlp_ratio)
        self.mlp = ConvMlp(hidden, args.dim, linear=args.linear, drop=args.drop, name="mlp")

    def build(self, input_shape: tuple) -> None:
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
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
        args = check_arguments("PVTStage", locals())
        rates = args.drop_path if isinstance(args.drop_path, list) else [args.drop_path or 0.0] * args.depth
        if len(rates) != args.depth:
            raise ValueError(f"`drop_path` needs {args.depth} rates (one per block), got {len(rates)}.")
        block = block_parameters(args.dim, args.mlp_ratio, args.sr_ratio, args.linear)
        check_parameters(args.depth * block, f"PVTStage {self.name!r}")
        self.dim = args.dim
        self.depth = args.depth
        self.num_heads = args.num_heads
        self.mlp_ratio = args.mlp_ratio
        self.sr_ratio = args.sr_ratio
        self.linear = args.linear
        self.patch_size = args.patch_size
        self.stride = args.stride
        self.qkv_bias = args.qkv_bias
        self.qk_scale = args.qk_scale
        self.drop_rate = args.drop
        self.attn_drop_rate = args.attn_drop
        self.drop_path_rates = rates

        self.patch_embed = OverlapPatchEmbed(args.dim, args.patch_size, args.stride, name="patch_embed")
        shared = {name: getattr(args, name) for name in SHARED_BLOCK_ARGUMENTS}
        self.blocks = [
            PVTBlock(args.dim, args.num_heads, **shared, drop_path=rate, name=f"block{j}")
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
        x = self.patch_embed(inputs, training=training)
        for block in self.blocks:
            x = block(x, training=training)
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
