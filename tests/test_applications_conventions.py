"""The conventions `keras.applications` models keep, checked on keras-pvt's builders (channels-last).

Also: the builders as written-out functions, `include_preprocessing` (raw pixels in, also through
`compile_inference` and the exports) and keras-hub's pyramid names (P2 ... P5).

The same checks as keras' own applications tests (keras/src/applications/applications_test.py),
written anew and offline: the builders build with their defaults and round-trip through
get_config / from_config and Keras serialization; without the top they give the last stage map
for the default, a custom spatial size, 1- and 4-channel inputs and a custom input tensor; pooling
"avg" / "max" gives a vector; `classifier_activation` is the last layer's activation.
"""

from __future__ import annotations

import functools
import inspect

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, fixture_config

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


# ---------------------------------------------------------------- the builders as written-out functions

BUILDER_ARGUMENTS = [
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "include_preprocessing",
    "name",
    "features_only",
    "drop_path_rate",
]
VARIANT_BUILDERS = {
    "b0": keras_pvt.PVTV2B0,
    "b1": keras_pvt.PVTV2B1,
    "b2": keras_pvt.PVTV2B2,
    "b2_li": keras_pvt.PVTV2B2Li,
    "b3": keras_pvt.PVTV2B3,
    "b4": keras_pvt.PVTV2B4,
    "b5": keras_pvt.PVTV2B5,
}


@pytest.mark.all_backends
@pytest.mark.parametrize("variant", list(VARIANT_BUILDERS))
def test_each_builder_is_a_def_with_the_keras_applications_arguments(variant: str) -> None:
    builder = VARIANT_BUILDERS[variant]
    parameters = inspect.signature(builder).parameters
    assert list(parameters) == BUILDER_ARGUMENTS
    assert parameters["weights"].default == "imagenet"
    assert parameters["include_preprocessing"].default is False
    assert parameters["name"].default == f"pvt_v2_{variant}"
    source = inspect.getsource(builder)  # a real def in model.py, found by grep and IDEs
    assert source.startswith(f"def {builder.__name__}(") and inspect.getmodule(builder) is keras_pvt.model
    documented = builder.__doc__.split("Args:")[1]
    assert [arg for arg in BUILDER_ARGUMENTS if f"\n    {arg}:" not in documented] == []
    assert keras_pvt.model.BASE_DOCSTRING.split("{")[0] in builder.__doc__


# ---------------------------------------------------------------- include_preprocessing


def _raw_pixels(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.all_backends
@pytest.mark.parametrize("channels", [3, 4])
def test_include_preprocessing_equals_preprocess_input_then_the_plain_model(channels: int) -> None:
    shape = (None, None, channels)
    plain = PVT_V2(tiny_config(), input_shape=shape, classifier_activation=None)
    raw = PVT_V2(tiny_config(), input_shape=shape, classifier_activation=None, include_preprocessing=True)
    assert len(raw.weights) == len(plain.weights)  # the normalisation has no weights to load
    assert raw.layers[1].name == "pixel_normalization" and raw.layers[2].name == "image_size_check"
    raw.set_weights(plain.get_weights())
    pixels = _raw_pixels((2, 64, 48, channels))
    want = _numpy(plain(keras_pvt.preprocess_input(pixels)))
    np.testing.assert_allclose(_numpy(raw(pixels)), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_numpy(raw(pixels.astype(np.uint8))), want, rtol=1e-5, atol=1e-5)


@pytest.mark.all_backends
def test_preprocess_input_with_model_never_normalises_twice() -> None:
    raw = PVT_V2(tiny_config(), include_preprocessing=True)
    plain = PVT_V2(tiny_config())
    pixels = _raw_pixels((1, 32, 32, 3))
    np.testing.assert_array_equal(keras_pvt.preprocess_input(pixels, model=raw), pixels)
    normalised = keras_pvt.preprocess_input(pixels, model=plain)
    np.testing.assert_array_equal(normalised, keras_pvt.preprocess_input(pixels))
    for model in (raw, plain):
        with pytest.raises(ValueError, match="look normalised already"):
            keras_pvt.preprocess_input(normalised, model=model)
    with pytest.raises(ValueError, match="normalises its inputs itself"):
        keras_pvt.preprocess_input(pixels, model=raw, mean=0.5)
    tensor = keras_pvt.preprocess_input(keras.ops.convert_to_tensor(pixels), model=raw)
    np.testing.assert_array_equal(_numpy(tensor), pixels)


@pytest.mark.all_backends
@pytest.mark.slow
def test_every_weights_source_loads_into_a_model_with_preprocessing(tmp_path) -> None:
    checkpoint = str(FIXTURES / "tiny_sr_timm.safetensors")
    config = fixture_config("tiny_sr")
    plain = PVT_V2(config, weights=checkpoint, classifier_activation=None)
    plain.save_weights(tmp_path / "plain.weights.h5")  # .keras files load the same way
    pixels = _raw_pixels((1, 64, 64, 3))
    want = _numpy(plain(keras_pvt.preprocess_input(pixels)))
    for weights in (checkpoint, tmp_path / "plain.weights.h5"):
        raw = PVT_V2(config, weights=str(weights), classifier_activation=None, include_preprocessing=True)
        np.testing.assert_allclose(_numpy(raw(pixels)), want, rtol=1e-5, atol=1e-6, err_msg=str(weights))
    # 4 channels: the RGB Keras file loads through an RGB twin of the model, first kernel adapted.
    four = {"input_shape": (None, None, 4), "classifier_activation": None}
    with pytest.warns(UserWarning, match="adapted it from 3"):
        plain4 = PVT_V2(config, weights=checkpoint, **four)
        raw4 = PVT_V2(config, weights=str(tmp_path / "plain.weights.h5"), include_preprocessing=True, **four)
    pixels4 = _raw_pixels((1, 64, 64, 4))
    want4 = _numpy(plain4(keras_pvt.preprocess_input(pixels4)))
    np.testing.assert_allclose(_numpy(raw4(pixels4)), want4, rtol=1e-5, atol=1e-6)


@pytest.mark.all_backends
def test_a_model_with_preprocessing_round_trips_through_keras_files_in_safe_mode(tmp_path) -> None:
    model = PVT_V2(tiny_config(in_channels=4), include_preprocessing=True)
    model.save(tmp_path / "raw.keras")
    restored = keras.models.load_model(tmp_path / "raw.keras", safe_mode=True)
    pixels = _raw_pixels((1, 40, 40, 4))
    np.testing.assert_allclose(_numpy(restored(pixels)), _numpy(model(pixels)), atol=1e-6)
    assert restored.get_layer("pixel_normalization").get_config()["mean"] == pytest.approx(0.449 * 255)


def test_compile_inference_of_a_model_with_preprocessing_takes_integer_pixels() -> None:
    model = PVT_V2(tiny_config(), include_preprocessing=True)
    pixels = _raw_pixels((2, 64, 64, 3)).astype(np.uint8)
    predict = keras_pvt.compile_inference(model, strategy="plain")
    np.testing.assert_allclose(_numpy(predict(pixels)), _numpy(model(pixels.astype(np.float32))), atol=1e-6)
    with pytest.raises(ValueError, match="no preprocessing inside"):
        keras_pvt.compile_inference(PVT_V2(tiny_config()), strategy="plain")(pixels)


def test_export_images_for_a_model_with_preprocessing_stay_raw_pixels() -> None:
    """Calibration and verification images of a model that normalises itself are raw pixels."""
    from keras_pvt.export import load_images
    from keras_pvt.export.images import random_images

    raw, plain = PVT_V2(tiny_config(), include_preprocessing=True), PVT_V2(tiny_config())
    pixels = _raw_pixels((3, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_array_equal(load_images(pixels, model=raw), pixels.astype(np.float32))
    np.testing.assert_allclose(load_images(pixels, model=plain), keras_pvt.preprocess_input(pixels))
    with pytest.raises(ValueError, match="look normalised already"):
        load_images(keras_pvt.preprocess_input(pixels), model=raw)
    stand_ins = random_images(2, (8, 8), raw_pixels=True)
    assert stand_ins.min() >= 0 and stand_ins.max() <= 255 and stand_ins.max() > 100


@pytest.mark.slow
def test_tflite_export_of_a_model_with_preprocessing_takes_raw_pixels(tmp_path) -> None:
    pytest.importorskip("ai_edge_litert")
    from keras_pvt.export import TFLiteRunner, convert_to_tflite

    plain = PVT_V2(tiny_config(), classifier_activation=None)
    raw = PVT_V2(tiny_config(), classifier_activation=None, include_preprocessing=True)
    raw.set_weights(plain.get_weights())
    result = convert_to_tflite(raw, tmp_path / "raw.tflite", runs=1)  # verified on raw-pixel stand-ins
    assert result.verification.ok and result.verification.max_abs_diff_overall < 1e-3
    pixels = _raw_pixels((2, 64, 64, 3))
    exported = TFLiteRunner(str(tmp_path / "raw.tflite"), threads=1)(pixels)
    want = _numpy(plain(keras_pvt.preprocess_input(pixels)))
    np.testing.assert_allclose(next(iter(exported.values())), want, atol=1e-4)


# ---------------------------------------------------------------- keras-hub's pyramid names


@pytest.mark.all_backends
def test_stage_maps_under_keras_hub_pyramid_names() -> None:
    stages = PVT_V2(tiny_config(), features_only=True)
    pyramid = PVT_V2(tiny_config(), features_only=True, feature_names="pyramid")
    assert list(stages.output) == ["stage1", "stage2", "stage3", "stage4"]  # the default keys stay
    assert list(pyramid.output) == ["P2", "P3", "P4", "P5"]
    assert len(pyramid.weights) == len(stages.weights)
    pyramid.set_weights(stages.get_weights())
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    by_stage, by_level = stages(images), pyramid(images)
    for i, level in enumerate(["P2", "P3", "P4", "P5"]):
        assert by_level[level].shape[1] == 64 // 2 ** (i + 2)  # P_l has stride 2**l
        np.testing.assert_array_equal(_numpy(by_level[level]), _numpy(by_stage[f"stage{i + 1}"]))
    classifier = PVT_V2(tiny_config())  # keras-hub style: keras.Model(inputs, pyramid_outputs)
    head_input = keras.Model(classifier.input, keras_pvt.pyramid_outputs(classifier))
    assert {k: v.shape[-1] for k, v in head_input(images).items()} == {"P2": 16, "P3": 32, "P4": 48, "P5": 64}
    with pytest.raises(ValueError, match="feature_names"):
        PVT_V2(tiny_config(), features_only=True, feature_names="levels")
    with pytest.raises(ValueError, match="no PVT-v2 stage layers"):
        keras_pvt.pyramid_outputs(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
