"""The kernel dispatch: which implementation of each named kernel the layers get, chosen per trace.

Layers call the functions below (``kernels.dense(layer, x, training)`` ...); each forwards to the
same-named entry of the current `KernelTable`:

* with `training` true: the backend's training table while a training step is traced, else its
  default table (the inference tables never train);
* otherwise the table set by `use` (`compile_inference` sets one per compiled path);
* otherwise the backend's default table.

The backend's tables are registered once, by `keras_pvt.kernels` when it is imported. This module
imports no TensorFlow: the TensorFlow tables live in the `tf_*` modules beside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class KernelTable:
    """One implementation of every kernel the layers call; see the dispatch function of each name."""

    name: str
    dense: Callable[[Any, Any], Any]
    layer_norm: Callable[[Any, Any], Any]
    add_norm: Callable[[Any, Any, Any], tuple[Any, Any]]
    conv_norm: Callable[[Any, Any, Any], Any]
    conv_norm_gelu: Callable[[Any, Any, Any], Any]
    depthwise_conv_gelu: Callable[[Any, Any], Any]
    attention: Callable[[Any, Any, Any, Callable[[Any], Any]], Any]
    normalize: Callable[[Any, Any, Any, float], Any]
    assert_min_image_size: Callable[[Any, int, str], Any]


@dataclasses.dataclass
class _BackendTables:
    default: KernelTable | None = None
    training: KernelTable | None = None
    training_applies: Callable[[bool | None], bool] = lambda training: False


_BACKEND = _BackendTables()
_CURRENT: contextvars.ContextVar[KernelTable | None] = contextvars.ContextVar("keras_pvt_table", default=None)


def register_backend_tables(
    default: KernelTable,
    training: KernelTable | None = None,
    training_applies: Callable[[bool | None], bool] | None = None,
) -> None:
    """Make `default` the table outside `use`, and `training` the one wherever `training_applies`."""
    _BACKEND.default = default
    _BACKEND.training = training
    _BACKEND.training_applies = training_applies or (lambda training: False)


@contextlib.contextmanager
def use(table: KernelTable) -> Iterator[None]:
    """Trace the layers with `table`'s kernels for the duration of the block (inference only)."""
    token = _CURRENT.set(table)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current(training: bool | None = None) -> KernelTable:
    """The table the layers get now: see the module docstring for the rule."""
    if training:
        if _BACKEND.training is not None and _BACKEND.training_applies(training):
            return _BACKEND.training
        return _BACKEND.default  # type: ignore[return-value]
    return _CURRENT.get() or _BACKEND.default  # type: ignore[return-value]


def dense(layer: Any, x: Any, training: bool | None = None) -> Any:
    """``layer(x)`` for a `keras.layers.Dense` over the last axis of `x`."""
    return current(training).dense(layer, x)


def layer_norm(norm: Any, x: Any, training: bool | None = None) -> Any:
    """``norm(x)`` for a `LayerNorm` layer."""
    return current(training).layer_norm(norm, x)


def add_norm(norm: Any, x: Any, y: Any, training: bool | None = None) -> tuple[Any, Any]:
    """``(x + y, norm(x + y))``: a residual sum and its LayerNorm."""
    return current(training).add_norm(norm, x, y)


def conv_norm(conv: Any, norm: Any, x: Any, training: bool | None = None) -> Any:
    """``norm(conv(x))`` for a `keras.layers.Conv2D` with bias and a `LayerNorm`."""
    return current(training).conv_norm(conv, norm, x)


def conv_norm_gelu(conv: Any, norm: Any, x: Any, training: bool | None = None) -> Any:
    """``exact_gelu(norm(conv(x)))``."""
    return current(training).conv_norm_gelu(conv, norm, x)


def depthwise_conv_gelu(dwconv: Any, x: Any, training: bool | None = None) -> Any:
    """``exact_gelu(dwconv(x))`` for a 3x3 `keras.layers.DepthwiseConv2D` (stride 1, "same", bias)."""
    return current(training).depthwise_conv_gelu(dwconv, x)


def attention(
    q: Any, keys: Any, values: Any, dropout: Callable[[Any], Any], training: bool | None = None
) -> Any:
    """``dropout(softmax(q @ keys)) @ values``, softmax in float32; q ``(..., N, D)``, keys ``(..., D, M)``.

    `dropout` maps the attention weights (in `q`'s dtype) to the weights used; the inference tables
    leave it out, as it is the identity at inference.
    """
    return current(training).attention(q, keys, values, dropout)


def normalize(x: Any, gamma: Any, beta: Any, epsilon: float, training: bool | None = None) -> Any:
    """LayerNorm over the last axis of float32 `x`: ``x * inv + (beta - mean * inv)``, gamma/beta optional."""
    return current(training).normalize(x, gamma, beta, epsilon)


def assert_min_image_size(images: Any, minimum: int, message: str) -> Any:
    """`images`, failing the run with `message` if its run-time height or width is below `minimum`.

    Only for sizes unknown until the graph runs (the caller checks static sizes itself).
    """
    return current().assert_min_image_size(images, minimum, message)
