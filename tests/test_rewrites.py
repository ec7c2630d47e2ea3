"""Target rewrites (`keras_pvt.rewrites`): each equals the plain model to float32 round-off on every
backend, keeps the weights, and never changes the caller's model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt import PVT_V2
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.rewrites import OPENVINO, TFLITE_FLOAT, XLA, Rewrite, rewritten
from keras_pvt.rewrites.rows_norm import RowsLayerNorm
from keras_pvt.rewrites.shifted_conv import ShiftedDepthwiseConv2D, shifted_depthwise_conv

from helpers import tiny_config

pytestmark = pytest.mark.all_backends
F32_TOL = {"rtol": 1e-4, "atol": 1e-5}


def _maps(outputs) -> list[np.ndarray]:
    values = [outputs[k] for k in sorted(outputs)] if isinstance(outputs, dict) else list(outputs)
    return [keras.ops.convert_to_numpy(y) for y in values]


@pytest.mark.parametrize("rewrite", [XLA, OPENVINO], ids=lambda rewrite: rewrite.name)
@pytest.mark.parametrize("linear", [False, True])
def test_rewrite_equals_the_plain_model_on_an_odd_size(rewrite, linear):
    model = PVT_V2(tiny_config(linear=linear), features_only=True)  # unnormalised maps, not softmax
    images = np.random.default_rng(1).standard_normal((2, 45, 61, 3)).astype(np.float32)
    copy = rewritten(model, rewrite)
    assert copy is not model and len(rewrite.targets(copy)) == 0  # every target swapped
    replaced = set(rewrite.classes.values())
    assert sum(type(layer) in replaced for layer in copy._flatten_layers()) == len(rewrite.targets(model))
    plain, fast = _maps(model(images, training=False)), _maps(copy(images, training=False))
    assert len(plain) == 4
    for ours, reference in zip(fast, plain):
        assert np.isfinite(ours).all() and np.abs(reference).max() > 0.1
        np.testing.assert_allclose(ours, reference, rtol=0, atol=3e-5)


def test_rewritten_copy_keeps_weights_and_config_and_leaves_the_model_alone():
    model = PVT_V2(tiny_config())
    copy = rewritten(model, XLA)
    assert copy.get_config() == model.get_config()
    for ours, theirs in zip(copy.weights, model.weights, strict=True):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    assert not any(isinstance(layer, ShiftedDepthwiseConv2D) for layer in model._flatten_layers())
    assert len(XLA.targets(model)) == sum(tiny_config().depths)  # one depthwise conv per block


def test_nothing_to_rewrite_gives_the_model_itself():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    assert rewritten(model, XLA) is model and rewritten(model, None) is model
    strided = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3, strides=2)])
    assert rewritten(strided, XLA) is strided  # only 3x3 stride-1 "same" convs with bias are shifted


def test_a_rewrite_that_changes_the_maths_is_caught():
    """The equality check above can fail: a replacement that drops the bias differs."""

    class NoBias(keras.layers.DepthwiseConv2D):
        def call(self, inputs):
            return shifted_depthwise_conv(inputs, self.kernel, ops.zeros(self.bias.shape))

    model = PVT_V2(tiny_config(), features_only=True)
    for layer in XLA.targets(model):
        layer.bias.assign(np.full(layer.bias.shape, 0.5, "float32"))
    broken = rewritten(model, Rewrite("broken", {keras.layers.DepthwiseConv2D: NoBias}))
    images = np.random.default_rng(2).standard_normal((1, 64, 64, 3)).astype(np.float32)
    plain, fast = _maps(model(images, training=False)), _maps(broken(images, training=False))
    assert max(np.abs(a - b).max() for a, b in zip(plain, fast)) > 1e-3


@pytest.mark.parametrize("affine", [True, False])
def test_rows_layer_norm_equals_the_layer(affine):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 7, 12)) * 3 + 2).astype(np.float32)
    norm = LayerNorm(epsilon=1e-6, center=affine, scale=affine)
    norm.build(x.shape)
    if affine:
        norm.gamma.assign(rng.standard_normal(12).astype(np.float32))
        norm.beta.assign(rng.standard_normal(12).astype(np.float32))
    expected = keras.ops.convert_to_numpy(norm(x))
    norm.__class__ = RowsLayerNorm
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm(x)), expected, rtol=0, atol=2e-5)


def test_shifted_depthwise_conv_equals_the_layer():
    layer = keras.layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")
    images = np.random.default_rng(3).normal(size=(2, 9, 13, 4)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(images))
    shifted = shifted_depthwise_conv(ops.convert_to_tensor(images), layer.kernel, layer.bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(shifted), expected, **F32_TOL)


@pytest.mark.parametrize("linear", [False, True])
def test_tflite_folding_moves_perturbed_norm_affines_into_the_readers(linear):
    """With gamma and beta away from 1 and 0, the folded copy's readers change and its outputs do not."""
    from keras_pvt.export.kernel_choice import tflite_kernel_table

    model = PVT_V2(tiny_config(linear=linear), features_only=True)
    rng = np.random.default_rng(3)
    for layer in model._flatten_layers():
        if isinstance(layer, LayerNorm):
            layer.gamma.assign(rng.normal(1.0, 0.3, layer.gamma.shape).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.3, layer.beta.shape).astype("float32"))
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    copy = rewritten(model, tflite_kernel_table("none"))
    images = rng.standard_normal((2, 45, 61, 3)).astype(np.float32)
    for ours, reference in zip(_maps(copy(images, training=False)), _maps(model(images, training=False))):
        np.testing.assert_allclose(ours, reference, rtol=0, atol=3e-5)
    changed = {
        w.path for w, old in zip(copy.weights, before) if not np.allclose(keras.ops.convert_to_numpy(w), old)
    }
    assert any(path.endswith("attn/q/kernel") for path in changed) and any(
        "fc1/bias" in path for path in changed
    )
    for weight, old in zip(model.weights, before, strict=True):  # the caller's model is untouched
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), old)
    assert tflite_kernel_table("float16") is TFLITE_FLOAT
    assert tflite_kernel_table("int8") is None and tflite_kernel_table("dynamic") is None
