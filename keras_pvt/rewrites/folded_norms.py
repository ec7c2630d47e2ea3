"""Each block's LayerNorm affine and the attention's query scale folded into the layers that read
them, for TFLite's float files.

XNNPACK runs every elementwise op as its own pass over a tensor. A LayerNorm followed by a linear
layer ``(n(x) * gamma + beta) @ W + b`` equals ``n(x) @ (gamma[:, None] * W) + (beta @ W + b)``, so
the norm's two full-size affine passes can move into the weights; ``q(x) * scale`` likewise. Folded
here: a block's `norm1` into `q` and into the key/value source (the strided `sr` conv, which has no
padding; the Li variant's `sr` after average pooling, which the affine passes through; or `kv`), the
attention's reduction norm into `kv` (not in the Li variant: GELU lies between), `norm2` into
`fc1`, and the scale into `q`. The patch-embedding and stage norms stay as they are (their readers
are a LayerNorm, or a padded conv), computed as ``(x - mean) * inv * gamma + beta``
(`AffineLayerNorm`). Same outputs to float32 round-off.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_pvt._keras_private import nested_layers
from keras_pvt.layers.attention import SpatialReductionAttention
from keras_pvt.layers.block import PVTBlock
from keras_pvt.layers.norm import LayerNorm


def normalized(x: Any, epsilon: float) -> Any:
    """LayerNorm over the last axis without its affine, in float32: ``(x - mean) / sqrt(var + eps)``."""
    x = ops.cast(x, "float32")
    mean, variance = ops.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * ops.rsqrt(variance + epsilon)  # two full-size passes after the moments


class AffineLayerNorm(LayerNorm):
    """`LayerNorm` as ``(x - mean) * inv * gamma + beta``: four full-size passes after the moments,
    one fewer than the int8-friendly form (whose ``inv * gamma`` and ``mean * inv`` are full-size)."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        y = normalized(inputs, self.epsilon)
        if self.scale:
            y = y * ops.cast(self.gamma, "float32")
        if self.center:
            y = y + ops.cast(self.beta, "float32")
        return ops.cast(y, self.compute_dtype)


class FoldedNormBlock(PVTBlock):
    """`PVTBlock` whose `norm1` / `norm2` affines live in the attention's and MLP's weights."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        first = ops.cast(normalized(inputs, self.norm1.epsilon), self.compute_dtype)
        x = inputs + self.drop_path(self.attn(first, training=training), training=training)
        second = ops.cast(normalized(x, self.norm2.epsilon), self.compute_dtype)
        return x + self.drop_path(self.mlp(second, training=training), training=training)


class FoldedNormAttention(SpatialReductionAttention):
    """`SpatialReductionAttention` whose query scale lives in `q` and, with a strided `sr`, whose
    reduction norm's affine lives in `kv`."""

    def query(self, x: Any) -> Any:
        return self.q(x)

    def reduce(self, x: Any, training: bool | None = None) -> Any:
        if self.sr is None or self.linear:
            return super().reduce(x, training=training)
        return ops.cast(normalized(self.sr(x), self.norm.epsilon), self.compute_dtype)


def foldable(layer: Any) -> bool:
    """A block or attention whose query projection has a bias to take the norm's shift; every norm."""
    return bool(getattr(layer, "qkv_bias", True))


def _fold_into(reader: Any, gamma: np.ndarray, beta: np.ndarray) -> None:
    """Make `reader` (a Dense or Conv2D with bias, input channels on its kernel's second-to-last
    axis) compute ``reader(x * gamma + beta)`` from ``x``."""
    kernel, bias = (
        np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in (reader.kernel, reader.bias)
    )
    summed = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # a conv's taps added
    new_bias = bias + beta @ summed
    new_kernel = kernel * gamma[:, None]
    reader.kernel.assign(new_kernel.astype(reader.kernel.dtype))
    reader.bias.assign(new_bias.astype(reader.bias.dtype))


def _affine(norm: Any) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in (norm.gamma, norm.beta))


def fold_block_norms(model: keras.Model) -> None:
    """Fold, in place, the affines `FoldedNormBlock` and `FoldedNormAttention` leave out."""
    for block in nested_layers(model):
        if not isinstance(block, FoldedNormBlock):
            continue
        attention = block.attn
        gamma, beta = _affine(block.norm1)
        _fold_into(attention.q, gamma, beta)
        _fold_into(attention.kv if attention.sr is None else attention.sr, gamma, beta)
        if attention.sr is not None and not attention.linear:
            _fold_into(attention.kv, *_affine(attention.norm))
        scale = float(attention.scale)
        attention.q.kernel.assign(attention.q.kernel * scale)
        attention.q.bias.assign(attention.q.bias * scale)
        _fold_into(block.mlp.fc1, *_affine(block.norm2))
