"""The fused-segments table: TensorFlow's own matmuls and convolutions, elementwise chains as XLA clusters.

On CPU, PVT-v2 inference is bound by memory traffic: every LayerNorm, bias add and exact GELU is a
separate pass over large stage-1 maps in plain TensorFlow, while matmuls, convolutions and above all
the depthwise conv are fastest as TensorFlow's own (oneDNN) kernels. This table keeps those kernels
and sends each elementwise chain (bias + LayerNorm, residual + LayerNorm, bias + GELU) to one small
XLA cluster. Same maths as the plain table, so outputs agree to float32 round-off. Inference only,
TensorFlow only; `FUSED_IN_PIECES` also runs attention over many tokens in query pieces.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_pvt.kernels.activations import exact_gelu
from keras_pvt.kernels.tf_plain import TF_PLAIN

# In `FUSED_IN_PIECES`, attention over many tokens runs in query pieces of about this many scores
# each (16 MiB in float32), at most `ATTENTION_MAX_PIECES` pieces, so that each piece's scores and
# softmax stay in cache (measurements: `benchmarks/results/`).
ATTENTION_SCORES_PER_PIECE = 4 * 2**20
ATTENTION_MAX_PIECES = 16

_COMPILED: dict[Callable, Callable] = {}


def _segment(fn: Callable) -> Callable:
    """`fn` run as one XLA cluster, weights entering it as tensors read in the caller's graph."""

    @functools.wraps(fn)
    def compiled(*args: Any) -> Any:
        cluster = _COMPILED.get(fn)
        if cluster is None:
            cluster = tf.function(fn, jit_compile=True, reduce_retracing=True, autograph=False)
            _COMPILED[fn] = cluster
        return cluster(*(tf.identity(a.value) if isinstance(a, keras.Variable) else a for a in args))

    return compiled


def _norm(x: Any, gamma: Any, beta: Any, epsilon: float, dtype: Any) -> Any:
    return ops.cast(ops.layer_normalization(x, gamma, beta, axis=len(x.shape) - 1, epsilon=epsilon), dtype)


@_segment
def _bias_norm(x: Any, bias: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    return _norm(x + ops.cast(bias, x.dtype), gamma, beta, epsilon, x.dtype)


@_segment
def _bias_norm_gelu(x: Any, bias: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    return exact_gelu(_norm(x + ops.cast(bias, x.dtype), gamma, beta, epsilon, x.dtype))


@_segment
def _norm_only(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    return _norm(x, gamma, beta, epsilon, x.dtype)


@_segment
def _add_norm(x: Any, y: Any, gamma: Any, beta: Any, epsilon: float) -> tuple[Any, Any]:
    total = x + y
    return total, _norm(total, gamma, beta, epsilon, x.dtype)


@_segment
def _bias_gelu(x: Any, bias: Any) -> Any:
    return exact_gelu(x + ops.cast(bias, x.dtype))


def dense_2d(x: Any, units: int, multiply: Callable[[Any], Any], bias: Any) -> Any:
    """A Dense layer on NHWC `x` as one 2-D matmul (`multiply`) + bias, which TensorFlow fuses."""
    shape = ops.shape(x)
    y = multiply(ops.reshape(x, (-1, shape[-1])))
    if bias is not None:
        y = y + bias
    return ops.reshape(y, (*shape[:-1], units))


def dense(layer: Any, x: Any) -> Any:
    bias = None if layer.bias is None else ops.cast(layer.bias, x.dtype)
    return dense_2d(x, layer.units, lambda flat: ops.matmul(flat, ops.cast(layer.kernel, x.dtype)), bias)


def layer_norm(norm: Any, x: Any) -> Any:
    return _norm_only(x, norm.gamma, norm.beta, norm.epsilon)


def add_norm(norm: Any, x: Any, y: Any) -> tuple[Any, Any]:
    return _add_norm(x, y, norm.gamma, norm.beta, norm.epsilon)


def _conv(conv: Any, x: Any) -> Any:
    kernel = ops.cast(conv.kernel, x.dtype)
    return ops.conv(x, kernel, strides=conv.strides, padding=conv.padding)


def conv_norm(conv: Any, norm: Any, x: Any) -> Any:
    return _bias_norm(_conv(conv, x), conv.bias, norm.gamma, norm.beta, norm.epsilon)


def conv_norm_gelu(conv: Any, norm: Any, x: Any) -> Any:
    return _bias_norm_gelu(_conv(conv, x), conv.bias, norm.gamma, norm.beta, norm.epsilon)


def depthwise_conv_gelu(dwconv: Any, x: Any) -> Any:
    kernel = ops.cast(dwconv.kernel, x.dtype)
    return _bias_gelu(ops.depthwise_conv(x, kernel, strides=1, padding="same"), dwconv.bias)


def _attention(q: Any, keys: Any, values: Any) -> Any:
    weights = tf.nn.softmax(tf.cast(tf.matmul(q, keys), tf.float32), axis=-1)
    return tf.matmul(tf.cast(weights, q.dtype), values)


def attention(q: Any, keys: Any, values: Any, dropout: Callable[[Any], Any]) -> Any:
    return _attention(q, keys, values)


def attention_in_pieces(q: Any, keys: Any, values: Any, dropout: Callable[[Any], Any]) -> Any:
    """`attention`, with the queries split into pieces along N when the scores hold over two pieces.

    Each query's softmax is independent of the others, so the result is the same, piece by piece.
    """
    shape = tf.shape(q)
    groups = tf.reduce_prod(shape[:-2])
    queries, tokens = shape[-2], tf.shape(keys)[-1]
    scores = tf.cast(groups, tf.int64) * tf.cast(queries, tf.int64) * tf.cast(tokens, tf.int64)

    def in_pieces() -> Any:
        per_piece = ATTENTION_SCORES_PER_PIECE // tf.maximum(groups * tokens, 1)
        size = tf.maximum(per_piece, -(-queries // ATTENTION_MAX_PIECES))
        pieces: list[Any] = []
        for i in range(ATTENTION_MAX_PIECES):
            # One piece after the other, not side by side on the executor's threads: one piece's
            # scores in memory at a time, for about the same speed.
            with tf.control_dependencies(pieces[-1:]):
                pieces.append(_attention(q[..., i * size : (i + 1) * size, :], keys, values))
        return tf.concat(pieces, axis=-2)

    return tf.cond(scores > 2 * ATTENTION_SCORES_PER_PIECE, in_pieces, lambda: _attention(q, keys, values))


FUSED = dataclasses.replace(
    TF_PLAIN,
    name="tf_fused",
    dense=dense,
    layer_norm=layer_norm,
    add_norm=add_norm,
    conv_norm=conv_norm,
    conv_norm_gelu=conv_norm_gelu,
    depthwise_conv_gelu=depthwise_conv_gelu,
    attention=attention,
)
FUSED_IN_PIECES = dataclasses.replace(FUSED, name="tf_fused_in_pieces", attention=attention_in_pieces)
