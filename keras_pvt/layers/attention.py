"""Spatial-reduction attention (SRA) of PVT-v2, with the strided-conv and the linear (pooling) path."""

from __future__ import annotations

import warnings
from typing import Any

import keras
from keras import ops

from keras_pvt.layers.activations import exact_gelu
from keras_pvt.layers.initializers import conv_kernel_initializer, dense_kernel_initializer
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.layers.pooling import AdaptiveAveragePooling2D
from keras_pvt.limits import block_parameters, check_arguments, check_parameters

REDUCTION_NORM_EPSILON = 1e-5
LINEAR_POOL_SIZE = 7


@keras.saving.register_keras_serializable(package="keras_pvt")
class SpatialReductionAttention(keras.layers.Layer):
    """Multi-head attention whose keys and values come from a spatially reduced copy of the input.

    NHWC in and out. Queries use every position; keys/values use:
      * ``linear=True``: 7x7 adaptive average pooling, 1x1 conv, LayerNorm (eps 1e-5), exact GELU;
      * ``sr_ratio > 1``: a conv with kernel = stride = `sr_ratio`, then LayerNorm (eps 1e-5);
      * otherwise the input itself.
    The key/value projection `kv` emits ``[keys | values]`` along channels, as the reference.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        sr_ratio: int = 1,
        linear: bool = False,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        args = check_arguments("SpatialReductionAttention", locals())
        dim, num_heads, sr_ratio, linear = args.dim, args.num_heads, args.sr_ratio, args.linear
        if dim % num_heads:
            raise ValueError(f"`dim` ({dim}) must be divisible by `num_heads` ({num_heads}).")
        check_parameters(
            block_parameters(dim, 0, sr_ratio, linear), f"SpatialReductionAttention {self.name!r}"
        )
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.sr_ratio = sr_ratio
        self.linear = linear
        self.qkv_bias = args.qkv_bias
        self.qk_scale = args.qk_scale
        self.scale = args.qk_scale if args.qk_scale is not None else self.head_dim**-0.5
        self.attn_drop_rate = args.attn_drop
        self.proj_drop_rate = args.proj_drop

        dense = {"kernel_initializer": dense_kernel_initializer()}
        self.q = keras.layers.Dense(dim, use_bias=args.qkv_bias, name="q", **dense)
        self.kv = keras.layers.Dense(2 * dim, use_bias=args.qkv_bias, name="kv", **dense)
        self.attn_drop = keras.layers.Dropout(args.attn_drop, name="attn_drop")
        self.proj = keras.layers.Dense(dim, name="proj", **dense)
        self.proj_drop = keras.layers.Dropout(args.proj_drop, name="proj_drop")

        self.pool = None
        self.sr = None
        self.norm = None
        conv = {"kernel_initializer": conv_kernel_initializer()}
        if linear:
            self.pool = AdaptiveAveragePooling2D(LINEAR_POOL_SIZE, name="pool")
            self.sr = keras.layers.Conv2D(dim, 1, name="sr", **conv)
        elif sr_ratio > 1:
            self.sr = keras.layers.Conv2D(dim, sr_ratio, strides=sr_ratio, name="sr", **conv)
        if self.sr is not None:
            self.norm = LayerNorm(epsilon=REDUCTION_NORM_EPSILON, name="norm")

    def build(self, input_shape: tuple) -> None:
        channels_last = (*input_shape[:-1], self.dim)
        self.q.build(input_shape)
        self.kv.build(channels_last)
        self.proj.build(channels_last)
        if self.sr is not None:
            self.sr.build(channels_last)
            self.norm.build(channels_last)

    def query(self, x: Any) -> Any:
        """The queries, scaled: ``q(x) * scale``."""
        return self.q(x) * ops.cast(self.scale, self.compute_dtype)

    def reduce(self, x: Any, training: bool | None = None) -> Any:
        """The key/value source: the input, spatially reduced when this layer reduces."""
        if self.sr is None:
            return x
        if self.linear:
            return exact_gelu(self.norm(self.sr(self.pool(x))))
        return self.norm(self.sr(x))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        _, height, width, _ = ops.shape(inputs)
        heads, head_dim = self.num_heads, self.head_dim
        q = self.query(inputs)
        kv = self.kv(self.reduce(inputs, training=training))
        keys, values = ops.split(kv, 2, axis=-1)
        tokens = ops.shape(kv)[1] * ops.shape(kv)[2]
        if heads == 1:
            # One head: plain batched matmuls on (B, tokens, C), no head transposes.
            q = ops.reshape(q, (-1, height * width, head_dim))
            keys = ops.transpose(ops.reshape(keys, (-1, tokens, head_dim)), (0, 2, 1))
            values = ops.reshape(values, (-1, tokens, head_dim))
        else:
            q = ops.reshape(q, (-1, height * width, heads, head_dim))
            q = ops.transpose(q, (0, 2, 1, 3))  # (B, heads, N, head_dim)
            keys = ops.reshape(keys, (-1, tokens, heads, head_dim))
            values = ops.reshape(values, (-1, tokens, heads, head_dim))
            keys = ops.transpose(keys, (0, 2, 3, 1))  # (B, heads, head_dim, M)
            values = ops.transpose(values, (0, 2, 1, 3))  # (B, heads, M, head_dim)

        scores = ops.cast(ops.matmul(q, keys), "float32")  # softmax in float32 under mixed precision
        with warnings.catch_warnings():
            # A single key/value token (tiny inputs) is legitimate here, not the mistake Keras warns of.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            weights = ops.softmax(scores, axis=-1)
        out = ops.matmul(self.attn_drop(ops.cast(weights, q.dtype), training=training), values)
        if heads > 1:
            out = ops.transpose(out, (0, 2, 1, 3))  # (B, N, heads, head_dim)
        out = ops.reshape(out, (-1, height, width, self.dim))
        return self.proj_drop(self.proj(out), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "sr_ratio": self.sr_ratio,
            "linear": self.linear,
            "qkv_bias": self.qkv_bias,
            "qk_scale": self.qk_scale,
            "attn_drop": self.attn_drop_rate,
            "proj_drop": self.proj_drop_rate,
        }
