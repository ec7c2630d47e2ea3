"""Checks of values known only when a graph runs: the image-size assertion of `ImageSizeCheck`.

Only TensorFlow graphs have sizes unknown until they run (a `tf.function` with a relaxed signature,
a SavedModel signature with None dims); there the check is a graph assertion. Elsewhere (eager
calls, JAX and PyTorch, whose traces have static shapes) it is the identity. TensorFlow is imported
only on the TensorFlow backend.
"""

from __future__ import annotations

from typing import Any

import keras


def assert_min_image_size(images: Any, minimum: int, message: str) -> Any:
    """`images`, failing the run with `message` if its run-time height or width is below `minimum`.

    Fails a TensorFlow graph run with `tf.errors.InvalidArgumentError` carrying `message` and the
    shape (not the values); costs one shape read and one comparison per call. XLA and the TFLite
    converter drop the assertion, so those paths check static shapes before running instead.
    """
    if keras.backend.backend() != "tensorflow":
        return images
    import tensorflow as tf

    shape = tf.shape(images)
    large_enough = tf.reduce_all(shape[1:3] >= minimum)
    check = tf.debugging.Assert(large_enough, [message, "Got images of shape", shape], summarize=4)
    with tf.control_dependencies([check]):
        return tf.identity(images)
