"""Our `AdaptiveAveragePooling2D` against Keras' own: on TensorFlow and PyTorch the same PyTorch
windows wherever the spatial size is known when the layer is traced, but Keras' refuses sizes known
only at run time on TensorFlow, which the Li variant's dynamic-size SavedModel and TFLite exports
need (tests/test_export_li.py runs those exports), and on JAX some of its windows are off by a row.
That is why ours is kept."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_pvt.layers import AdaptiveAveragePooling2D

pytestmark = [
    pytest.mark.all_backends,
    pytest.mark.skipif(
        not hasattr(keras.layers, "AdaptiveAveragePooling2D"), reason="Keras' layer: Keras >= 3.13"
    ),
]

SIZES = [(s, s) for s in range(1, 71)] + [(5, 23), (13, 8), (29, 61), (70, 9), (1, 44), (97, 128)]


def _pytorch_rule(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """`torch.nn.AdaptiveAvgPool2d`'s windows, NHWC, in float64: floor(i*n/out) to ceil((i+1)*n/out)."""
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        h0, h1 = i * x.shape[1] // out_h, math.ceil((i + 1) * x.shape[1] / out_h)
        for j in range(out_w):
            w0, w1 = j * x.shape[2] // out_w, math.ceil((j + 1) * x.shape[2] / out_w)
            out[:, i, j] = x[:, h0:h1, w0:w1].astype("float64").mean(axis=(1, 2))
    return out


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="Keras' windows are off on JAX: next test")
@pytest.mark.parametrize("output_size", [(7, 7), (3, 5)])
def test_same_windows_as_keras_layer_at_every_static_size(output_size, rng):
    ours, theirs = AdaptiveAveragePooling2D(output_size), keras.layers.AdaptiveAveragePooling2D(output_size)
    for height, width in SIZES:
        x = rng.standard_normal((2, height, width, 3)).astype("float32")
        expected = _pytorch_rule(x, *output_size)
        for layer in (ours, theirs):
            got = keras.ops.convert_to_numpy(layer(x))
            np.testing.assert_allclose(
                got, expected, rtol=1e-5, atol=2e-6, err_msg=f"{layer} {height}x{width}"
            )


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="Keras' JAX implementation")
def test_keras_layer_windows_are_off_on_jax_where_ours_are_not(rng):
    """Keras' JAX backend finds the window starts by a float division, floor(i * n / out), which XLA
    may round below a whole quotient (21 * 2 / 7 -> 5.99...), so some windows shift by a row."""
    ours, theirs = AdaptiveAveragePooling2D(7), keras.layers.AdaptiveAveragePooling2D(7)
    x = rng.standard_normal((1, 21, 21, 2)).astype("float32")
    expected = _pytorch_rule(x, 7, 7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), expected, rtol=1e-5, atol=2e-6)
    error = np.abs(keras.ops.convert_to_numpy(theirs(x)) - expected).max()
    assert error > 1e-2, f"Keras' layer now has PyTorch's windows on JAX (error {error:.1e}): reconsider it"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="run-time sizes: TensorFlow graphs")
def test_only_ours_takes_sizes_known_at_run_time(rng):
    import tensorflow as tf

    signature = [tf.TensorSpec((None, None, None, 2), tf.float32)]
    ours = tf.function(AdaptiveAveragePooling2D(7), input_signature=signature)
    for height, width in [(3, 100), (12, 18), (56, 56)]:
        x = rng.standard_normal((2, height, width, 2)).astype("float32")
        np.testing.assert_allclose(ours(x).numpy(), _pytorch_rule(x, 7, 7), rtol=1e-5, atol=2e-6)
    theirs = tf.function(keras.layers.AdaptiveAveragePooling2D(7), input_signature=signature)
    with pytest.raises(ValueError, match="statically known"):
        theirs(np.zeros((1, 12, 18, 2), "float32"))
