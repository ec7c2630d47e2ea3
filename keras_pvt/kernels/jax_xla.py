"""The JAX inference table: the plain kernels, with each depthwise conv as shifted multiply-adds.

For the model's stateless call compiled whole by `jax.jit` (`compile_inference` on JAX): XLA's own
depthwise convolution is several times slower on CPU than nine shifted multiply-adds that it fuses
into one pass (`keras_pvt.kernels.shifted_conv`). Imports no JAX itself; inference only.
"""

from __future__ import annotations

import dataclasses

from keras_pvt.kernels.plain import PLAIN
from keras_pvt.kernels.shifted_conv import shifted_depthwise_conv_gelu

JAX_XLA = dataclasses.replace(PLAIN, name="jax_xla", depthwise_conv_gelu=shifted_depthwise_conv_gelu)
