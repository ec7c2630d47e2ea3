"""Opt-in fused inference path: elementwise segments compiled as small XLA clusters.

On CPU, PVT-v2 inference is bound by memory traffic: every LayerNorm, bias add and exact GELU is a
separate pass over large stage-1 maps in plain TensorFlow, while matmuls, convolutions and above all
the depthwise conv are fastest as TensorFlow's own (oneDNN) kernels. Inside `fused_segments()` the
layers keep those kernels and send each elementwise chain (bias + LayerNorm, residual + LayerNorm,
bias + GELU) to one XLA cluster. The maths is the same as the layer path, so outputs agree to float32
round-off. The context is only honoured with the TensorFlow backend and outside training; elsewhere
every helper here runs its plain Keras equivalent. `keras_pvt.compile_inference` turns it on.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import keras
from keras import ops

from keras_pvt.layers.activations import exact_gelu

# With `fused_segments(attention_pieces=True)`, attention over many tokens runs in query pieces of about
# this many scores each (16 MiB in float32), at most `ATTENTION_MAX_PIECES` pieces, so that each piece's
# scores and softmax stay in cache. Measured on a 2-core Xeon at 1024x1024: B2 5-10% faster, B0 10%
# faster; no change at 768x768.
ATTENTION_SCORES_PER_PIECE = 4 * 2**20
ATTENTION_MAX_PIECES = 16

_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("keras_pvt_fused", default=False)
_PIECES: contextvars.ContextVar[bool] = contextvars.ContextVar("keras_pvt_pieces", default=False)
_WHOLE_XLA: contextvars.ContextVar[bool] = contextvars.ContextVar("keras_pvt_xla", default=False)
# Dense layer -> (kernel transposed to (units, inputs), bias or None), as eager tensors.
DenseSnapshot = Mapping[keras.layers.Dense, tuple[Any, Any | None]]
_FROZEN_DENSE: contextvars.ContextVar[DenseSnapshot] = contextvars.ContextVar(
    "keras_pvt_frozen", default=MappingProxyType({})
)
_COMPILED: dict[Callable, Callable] = {}


@contextlib.contextmanager
def fused_segments(enabled: bool = True, attention_pieces: bool = False) -> Iterator[None]:
    """Trace the model's layers with XLA-fused elementwise segments (TensorFlow backend only).

    `attention_pieces` lets `attention` split large score matrices into query pieces (for large
    images: on small ones the size test alone would cost more than it saves).
    """
    token = _ACTIVE.set(enabled and keras.backend.backend() == "tensorflow")
    pieces = _PIECES.set(attention_pieces)
    try:
        yield
    finally:
        _PIECES.reset(pieces)
        _ACTIVE.reset(token)


@contextlib.contextmanager
def whole_graph_xla(enabled: bool = True) -> Iterator[None]:
    """Trace for a model compiled whole by XLA: depthwise convs become nine shifted multiply-adds."""
    token = _WHOLE_XLA.set(enabled)
    try:
        yield
    finally:
        _WHOLE_XLA.reset(token)


@contextlib.contextmanager
def frozen_dense(snapshot: DenseSnapshot) -> Iterator[None]:
    """Trace the Dense layers in `snapshot` as matmuls with its tensors (captured by the trace)."""
    token = _FROZEN_DENSE.set(snapshot)
    try:
        yield
    finally:
        _FROZEN_DENSE.reset(token)


def dense_snapshot(model: keras.Model) -> dict[keras.layers.Dense, tuple[Any, Any | None]]:
    """Copies of `model`'s float32 Dense weights taken now, kernels stored transposed, (units, inputs).

    With the kernel in that layout, XLA's CPU dot runs the matmuls of few rows (stage 4 at batch 1)
    markedly faster; `compile_inference(freeze_weights=True)` uses this. TensorFlow only.
    """
    import tensorflow as tf

    return {
        layer: (
            tf.transpose(layer.kernel.value),
            None if layer.bias is None else tf.identity(layer.bias.value),
        )
        for layer in model._flatten_layers()  # every nested layer (Keras has no public equivalent)
        if isinstance(layer, keras.layers.Dense) and layer.compute_dtype == "float32"
    }


def xla_depthwise() -> bool:
    """True while tracing inside `whole_graph_xla()`."""
    return _WHOLE_XLA.get()


def active(training: bool | None = None) -> bool:
    """True while tracing inside `fused_segments()` for inference."""
    return _ACTIVE.get() and not training


def _segment(fn: Callable) -> Callable:
    """Run `fn` as one XLA cluster when fused segments are active, as plain ops otherwise."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        if not _ACTIVE.get():
            return fn(*args)
        import tensorflow as tf

        compiled = _COMPILED.get(fn)
        if compiled is None:
            compiled = tf.function(fn, jit_compile=True, reduce_retracing=True, autograph=False)
            _COMPILED[fn] = compiled
        # Weights enter the cluster as tensors (read in the caller's graph).
        return compiled(*(tf.identity(a.value) if isinstance(a, keras.Variable) else a for a in args))

    return wrapper


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


def call_dense(layer: keras.layers.Dense, x: Any, fused: bool) -> Any:
    """`layer(x)`, as `dense` when fused segments are on or a `frozen_dense` snapshot holds `layer`."""
    if fused or layer in _FROZEN_DENSE.get():
        return dense(layer, x)
    return layer(x)


def dense(layer: keras.layers.Dense, x: Any) -> Any:
    """`layer(x)` for NHWC `x` as one 2-D matmul + bias, which TensorFlow fuses into one kernel.

    Inside `frozen_dense`, a snapshotted layer multiplies by its snapshot's transposed kernel.
    """
    shape = ops.shape(x)
    flat = ops.reshape(x, (-1, shape[-1]))
    frozen = _FROZEN_DENSE.get().get(layer)
    if frozen is not None:
        import tensorflow as tf

        kernel_t, bias = frozen
        y = tf.matmul(flat, kernel_t, transpose_b=True)
    else:
        y = ops.matmul(flat, ops.cast(layer.kernel, x.dtype))
        bias = None if layer.bias is None else ops.cast(layer.bias, x.dtype)
    if bias is not None:
        y = y + bias
    return ops.reshape(y, (*shape[:-1], layer.units))


def layer_norm(norm: keras.layers.LayerNormalization, x: Any, bias: Any = None) -> Any:
    """`norm(x + bias)` (bias optional) as one fused segment."""
    if bias is None:
        return _norm_only(x, norm.gamma, norm.beta, norm.epsilon)
    return _bias_norm(x, bias, norm.gamma, norm.beta, norm.epsilon)


def layer_norm_gelu(norm: keras.layers.LayerNormalization, x: Any, bias: Any) -> Any:
    """`gelu(norm(x + bias))`, exact GELU, as one fused segment."""
    return _bias_norm_gelu(x, bias, norm.gamma, norm.beta, norm.epsilon)


def add_norm(norm: keras.layers.LayerNormalization, x: Any, y: Any) -> tuple[Any, Any]:
    """`(x + y, norm(x + y))` as one fused segment."""
    return _add_norm(x, y, norm.gamma, norm.beta, norm.epsilon)


def bias_gelu(x: Any, bias: Any) -> Any:
    """Exact `gelu(x + bias)` as one fused segment."""
    return _bias_gelu(x, bias)


def attention(q: Any, keys: Any, values: Any) -> Any:
    """``softmax(q @ keys) @ values`` with the softmax in float32; q ``(..., N, D)``, keys ``(..., D, M)``.

    Inside `fused_segments(attention_pieces=True)`, when the scores hold more than two pieces' worth,
    the queries are split into pieces along N: each query's softmax is independent of the others, so
    the result is the same, piece by piece.
    """
    import tensorflow as tf

    def whole(q: Any) -> Any:
        weights = tf.nn.softmax(tf.cast(tf.matmul(q, keys), tf.float32), axis=-1)
        return tf.matmul(tf.cast(weights, q.dtype), values)

    if not _PIECES.get():
        return whole(q)

    shape = tf.shape(q)
    groups = tf.reduce_prod(shape[:-2])
    queries, tokens = shape[-2], tf.shape(keys)[-1]
    scores = tf.cast(groups, tf.int64) * tf.cast(queries, tf.int64) * tf.cast(tokens, tf.int64)

    def in_pieces() -> Any:
        per_piece = ATTENTION_SCORES_PER_PIECE // tf.maximum(groups * tokens, 1)
        size = tf.maximum(per_piece, -(-queries // ATTENTION_MAX_PIECES))
        pieces: list[Any] = []
        for i in range(ATTENTION_MAX_PIECES):
            # One piece after the other, not side by side on the executor's threads (measured: about the same
            # speed at batch 1 and peak memory at batch 4 either way; in order, one piece's scores at a time).
            with tf.control_dependencies(pieces[-1:]):
                pieces.append(whole(q[..., i * size : (i + 1) * size, :]))
        return tf.concat(pieces, axis=-2)

    return tf.cond(scores > 2 * ATTENTION_SCORES_PER_PIECE, in_pieces, lambda: whole(q))
