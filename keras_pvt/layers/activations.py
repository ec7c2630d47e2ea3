"""Exact (erf) GELU in PyTorch's own form, as the layers compute it."""

from __future__ import annotations

from typing import Any

from keras import ops

_SQRT_HALF = 0.7071067811865476


def normal_cdf(x: Any) -> Any:
    """Phi(x), the standard normal CDF: ``0.5 * (1 + erf(x / sqrt(2)))``."""
    return 0.5 * (1.0 + ops.erf(x * _SQRT_HALF))


def exact_gelu(x: Any) -> Any:
    """``0.5 * x * (1 + erf(x / sqrt(2)))``: PyTorch's `nn.GELU()` formula, not the tanh approximation.

    `keras.ops.gelu(x, approximate=False)` gives the same function through ``erfc`` on TensorFlow,
    which is slower on CPU (XLA and plain kernels alike) for no accuracy gain here.
    """
    # Keep this exact expression: the TFLite converter matches it to one builtin GELU op. Written as
    # ``x * normal_cdf(x)`` it is not matched, and the model needs the non-builtin Erf op.
    return 0.5 * x * (1.0 + ops.erf(x * _SQRT_HALF))
