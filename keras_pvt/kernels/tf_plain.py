"""The TensorFlow default table: the plain kernels, plus a run-time size assertion inside graphs.

TensorFlow only. The image-size assertion is for tensors whose height or width is unknown until the
graph runs (a `tf.function` with a relaxed signature, a SavedModel signature with None dims). XLA
(``jit_compile``) and the TFLite converter drop assertions, so those paths rely on the trace-time
check of static shapes instead.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_pvt.kernels.plain import PLAIN


def assert_min_image_size(images: tf.Tensor, minimum: int, message: str) -> tf.Tensor:
    """`images` unchanged, once the run-time height and width are found to be >= `minimum`.

    Fails the graph run with `tf.errors.InvalidArgumentError` carrying `message` and the shape
    (not the values). Costs one shape read and one comparison per call.
    """
    shape = tf.shape(images)
    large_enough = tf.reduce_all(shape[1:3] >= minimum)
    check = tf.debugging.Assert(large_enough, [message, "Got images of shape", shape], summarize=4)
    with tf.control_dependencies([check]):
        return tf.identity(images)


TF_PLAIN = dataclasses.replace(PLAIN, name="tf_plain", assert_min_image_size=assert_min_image_size)
