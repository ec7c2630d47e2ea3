"""The training rewrite (XLA exact GELU and LayerNorm): same values and gradients as plain autodiff."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2
from keras_pvt.layers.activations import exact_gelu
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.rewrites import training as training_kernels

from helpers import tiny_config

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow kernels")


def _values_and_gradients(fn, inputs, weights=()):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.cos(y))  # a non-trivial upstream gradient
        return (y, *tape.gradient(loss, [x, *weights]))

    return [t.numpy() for t in run(tf.constant(inputs))]


def test_applies_only_while_tracing_a_training_step():
    assert not training_kernels.applies(True)  # eager
    assert not training_kernels.applies(None)
    seen = []
    tf.function(lambda: seen.extend([training_kernels.applies(True), training_kernels.applies(False)]))()
    assert seen == [True, False]


def test_gelu_kernel_matches_autodiff(rng):
    x = rng.normal(scale=3.0, size=(2, 9, 11, 16)).astype("float32")
    fused = _values_and_gradients(training_kernels.gelu, x)
    plain = _values_and_gradients(exact_gelu, x)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_layer_norm_kernel_matches_autodiff(rng):
    x = rng.normal(loc=0.5, scale=2.0, size=(2, 7, 5, 24)).astype("float32")
    norm = training_kernels.TrainingLayerNorm(epsilon=1e-6)
    norm.build(x.shape)
    norm.gamma.assign(rng.normal(size=24).astype("float32"))
    norm.beta.assign(rng.normal(size=24).astype("float32"))
    weights = [norm.gamma.value, norm.beta.value]
    fused = _values_and_gradients(lambda t: norm(t, training=True), x, norm.trainable_variables)
    plain = _values_and_gradients(lambda t: norm(t, training=False), x, norm.trainable_variables)
    assert len(fused) == 4 and len(weights) == 2
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_model_fit_traces_the_kernels_and_inference_does_not(monkeypatch, rng, tmp_path):
    calls = {"gelu": 0, "layer_norm": 0}
    kernel = training_kernels._kernel

    def counting(name):
        calls[name] += 1
        return kernel(name)

    monkeypatch.setattr(training_kernels, "_kernel", counting)
    model = training_kernels.rewrite_for_training(PVT_V2(tiny_config(num_classes=3)))
    images = rng.normal(size=(2, 64, 64, 3)).astype("float32")
    tf.function(lambda x: model(x, training=False))(images)
    assert calls == {"gelu": 0, "layer_norm": 0}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(images, np.array([0, 2]))
    traces = calls["gelu"] // sum(tiny_config().depths)  # Keras may trace the step more than once
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, LayerNorm)]
    assert traces >= 1 and calls["gelu"] == traces * sum(tiny_config().depths)  # one per block's MLP
    assert calls["layer_norm"] == traces * len(norms)  # every LayerNorm of the model
    # The rewrite leaves what a saved model holds unchanged: it loads as the plain model.
    model.save(tmp_path / "trained.keras")
    loaded = keras.saving.load_model(tmp_path / "trained.keras", safe_mode=True)
    assert not any(type(layer).__name__.startswith("Training") for layer in loaded._flatten_layers())
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
