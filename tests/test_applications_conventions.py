"""The conventions `keras.applications` models keep, checked on keras-pvt's builders (channels-last).

The same checks as keras' own applications tests (keras/src/applications/applications_test.py),
written anew and offline: the builders build with their defaults and round-trip through
get_config / from_config and Keras serialization; without the top they give the last stage map
for the default, a custom spatial size, 1- and 4-channel inputs and a custom input tensor; pooling
"avg" / "max" gives a vector; `classifier_activation` is the last layer's activation.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

import keras_pvt
from keras_pvt import PVT_V2

from helpers import tiny_config

# (builder, width of the last stage): PVTV2B0 itself (1000 classes), and a tiny linear-attention
# ("Li") model (10 classes).
BUILDERS = [
    pytest.param(keras_pvt.PVTV2B0, 256, id="PVTV2B0"),
    pytest.param(functools.partial(PVT_V2, tiny_config(linear=True)), 64, id="tiny_li"),
]
CLASSES = {256: 1000, 64: 10}


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
def test_base_model_builds_and_round_trips_its_config(builder, last_dim: int) -> None:
    model = builder(weights=None)
    assert list(model.output.shape) == [None, CLASSES[last_dim]]
    rebuilt = keras.Model.from_config(model.get_config())
    assert len(rebuilt.weights) == len(model.weights)
    assert rebuilt.output.shape == model.output.shape
    rebuilt.set_weights(model.get_weights())
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(images), model(images), atol=1e-6)


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
def test_serialize_and_deserialize(builder, last_dim: int) -> None:
    model = builder(weights=None, include_top=False)
    config = keras.saving.serialize_keras_object(model)
    restored = keras.saving.deserialize_keras_object(config)
    assert len(restored.weights) == len(model.weights)
    assert list(restored.output.shape) == [None, None, None, last_dim]


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
def test_notop_gives_the_last_stage_map(builder, last_dim: int) -> None:
    model = builder(weights=None, include_top=False)
    assert list(model.output.shape) == [None, None, None, last_dim]


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
def test_notop_custom_input_shape(builder, last_dim: int) -> None:
    model = builder(weights=None, include_top=False, input_shape=(123, 97, 3))
    # 123x97 -> stride 4: 31x25 -> stride 2: 16x13, 8x7, 4x4.
    assert list(model.output.shape) == [None, 4, 4, last_dim]


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
@pytest.mark.parametrize("channels", [1, 4])
def test_notop_variable_input_channels(builder, last_dim: int, channels: int) -> None:
    model = builder(weights=None, include_top=False, input_shape=(None, None, channels))
    assert list(model.output.shape) == [None, None, None, last_dim]
    assert model.get_layer("stage1").patch_embed.proj.kernel.shape[2] == channels
    images = np.zeros((1, 64, 64, channels), np.float32)
    assert model(images).shape == (1, 2, 2, last_dim)


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
def test_notop_custom_input_tensor(builder, last_dim: int) -> None:
    source = keras.Input(shape=(200, 200, 4), name="custom_input")
    tensor = keras.layers.Conv2D(3, 2, strides=2, padding="valid")(source)
    model = builder(weights=None, include_top=False, input_tensor=tensor)
    assert model.inputs[0] is source
    assert list(model.output.shape) == [None, 4, 4, last_dim]  # 100x100 -> 25, 13, 7, 4


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling(builder, last_dim: int, pooling: str) -> None:
    model = builder(weights=None, include_top=False, pooling=pooling)
    assert list(model.output.shape) == [None, last_dim]


@pytest.mark.parametrize(("builder", "last_dim"), BUILDERS)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", None])
def test_classifier_activation(builder, last_dim: int, activation: str | None) -> None:
    model = builder(weights=None, include_top=True, classifier_activation=activation)
    assert model.layers[-1].activation.__name__ == (activation or "linear")
