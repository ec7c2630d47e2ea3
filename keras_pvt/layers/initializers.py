"""Initialisers of the reference implementation, as Keras initialisers."""

from __future__ import annotations

import keras


def dense_kernel_initializer() -> keras.initializers.Initializer:
    """Truncated normal with std 0.02, as `trunc_normal_(std=.02)` on every `nn.Linear`."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


def conv_kernel_initializer() -> keras.initializers.Initializer:
    """Normal with std sqrt(2 / fan_out), fan_out = kh * kw * out_channels / groups.

    Keras' fan_out of a (kh, kw, in, out) conv kernel and of a (kh, kw, C, 1) depthwise kernel is the
    reference's fan_out in both cases.
    """
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")
