"""The whole-graph XLA table: the TensorFlow default, with each depthwise conv as shifted multiply-adds.

For a model compiled whole by XLA (``jit_compile=True``), whose own depthwise convolution is much
slower than TensorFlow's kernel on CPU (`keras_pvt.kernels.shifted_conv`). TensorFlow only.
"""

from __future__ import annotations

import dataclasses

from keras_pvt.kernels.shifted_conv import shifted_depthwise_conv_gelu
from keras_pvt.kernels.tf_plain import TF_PLAIN

TF_XLA = dataclasses.replace(TF_PLAIN, name="tf_xla", depthwise_conv_gelu=shifted_depthwise_conv_gelu)
