"""`compile_inference` (keras_pvt.inference): every engine equals the model, the default follows the
written rule, old spellings still run with a warning (no timing here)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_pvt import PVT_V2
from keras_pvt.inference import compile_inference, engines
from keras_pvt.inference.engines import default_engine

from helpers import tiny_config

F32_TOL = {"rtol": 1e-4, "atol": 1e-5}
BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's engines")


def _random_model(**kwargs) -> keras.Model:
    linear = kwargs.pop("linear", False)
    return PVT_V2(tiny_config(linear=linear), **kwargs)


def _images(rng: np.random.Generator, batch: int, height: int, width: int) -> np.ndarray:
    return rng.normal(size=(batch, height, width, 3)).astype("float32")


@tensorflow_only
@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("engine", ["xla", "plain"])
@pytest.mark.slow
def test_compiled_equals_model_at_several_sizes(linear, engine, rng):
    model = _random_model(linear=linear, include_top=False, pooling="avg")
    predict = compile_inference(model, engine=engine)
    for batch, height, width in [(2, 64, 64), (1, 48, 80)]:
        images = _images(rng, batch, height, width)
        expected = model(images, training=False).numpy()
        np.testing.assert_allclose(predict(images).numpy(), expected, **F32_TOL)


def test_default_engine_follows_the_written_rule(monkeypatch):
    assert default_engine("jax", "float32", None) == "xla"
    assert default_engine("torch", "float32", None) == "plain"
    assert default_engine("tensorflow", "bfloat16", None) == "plain"
    assert default_engine("tensorflow", "float32", False) == "xla"  # follows the weights: no snapshot
    monkeypatch.setattr(engines, "installed", lambda engine: True)
    assert default_engine("tensorflow", "float32", None) == engines.TENSORFLOW_DEFAULTS[0]
    assert default_engine("tensorflow", "float32", True) == engines.TENSORFLOW_DEFAULTS[0]
    # Nothing but TensorFlow installed: the backend's XLA compiler.
    monkeypatch.setattr(engines, "installed", lambda engine: engine not in ("litert", "openvino"))
    assert default_engine("tensorflow", "float32", None) == "xla"


def test_installed_says_what_can_be_imported(monkeypatch):
    import importlib.util

    assert engines.installed("xla") and engines.installed("plain")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert not engines.installed("litert") and not engines.installed("openvino")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"strategy": "auto"}, engines.BACKEND_COMPILER.get(BACKEND)),
        ({"strategy": "plain"}, "plain"),
        ({"engine": "backend"}, engines.BACKEND_COMPILER.get(BACKEND)),
    ],
)
def test_old_spellings_run_with_a_deprecation_warning(old, new, rng):
    model = _random_model(include_top=False, pooling="avg")
    with pytest.warns(DeprecationWarning, match=rf"use engine='{new}'"):
        predict = compile_inference(model, **old)
    images = _images(rng, 1, 64, 64)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(predict(images)), expected, **F32_TOL)


@tensorflow_only
@pytest.mark.parametrize(("old", "new"), [("segments", "xla"), ("auto", "measure")])
def test_old_engine_names_say_their_new_name(old, new, monkeypatch):
    monkeypatch.setattr(engines, "_deprecated", lambda was, now: seen.append((was, now)))
    seen: list = []
    assert engines.translate_old_spellings(old, None, "tensorflow") == new
    assert seen == [(f"engine={old!r}", f"engine={new!r}")]
    assert engines.translate_old_spellings("openvino", None, "tensorflow") == "openvino"
    assert seen == [(f"engine={old!r}", f"engine={new!r}")]  # today's names: no warning


@tensorflow_only
@pytest.mark.parametrize("engine", ["xla", "plain"])
def test_compiled_features_only_returns_every_stage(engine, rng):
    model = _random_model(features_only=True)
    predict = compile_inference(model, engine=engine)
    images = _images(rng, 2, 64, 96)
    expected = model(images, training=False)
    outputs = predict(images)
    assert sorted(outputs) == ["stage1", "stage2", "stage3", "stage4"]
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name].numpy(), value.numpy(), **F32_TOL)


@pytest.mark.slow
def test_default_engine_classifier_probabilities(rng):
    model = _random_model()
    images = _images(rng, 2, 64, 64)
    probs = keras.ops.convert_to_numpy(compile_inference(model)(images))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(probs, expected, **F32_TOL)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


@tensorflow_only
def test_xla_follows_weight_updates(rng):
    model = _random_model(include_top=False, pooling="avg")
    predict = compile_inference(model, engine="xla")
    images = _images(rng, 1, 64, 64)
    before = predict(images).numpy()
    model.set_weights([w * 1.5 for w in model.get_weights()])
    after = predict(images).numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, model(images, training=False).numpy(), **F32_TOL)


@tensorflow_only
@pytest.mark.parametrize("engine", ["xla", "plain"])
@pytest.mark.slow
def test_frozen_weights_equal_the_model_and_ignore_later_updates(engine, rng):
    model = _random_model(classifier_activation=None)
    frozen = compile_inference(model, engine=engine, freeze_weights=True)
    live = compile_inference(model, engine=engine)
    images, other_size = _images(rng, 2, 64, 64), _images(rng, 1, 96, 80)
    expected = model(images, training=False).numpy()
    expected_other_size = model(other_size, training=False).numpy()
    np.testing.assert_allclose(frozen(images).numpy(), expected, **F32_TOL)

    model.set_weights([w * 1.5 for w in model.get_weights()])
    np.testing.assert_allclose(frozen(images).numpy(), expected, **F32_TOL)
    # A new input shape is compiled after the update, and still sees the snapshot.
    np.testing.assert_allclose(frozen(other_size).numpy(), expected_other_size, **F32_TOL)
    updated = model(images, training=False).numpy()
    assert not np.allclose(updated, expected, **F32_TOL)
    np.testing.assert_allclose(live(images).numpy(), updated, **F32_TOL)


@tensorflow_only
@pytest.mark.slow
def test_bfloat16_path_is_close_and_returns_float32(rng):
    model = _random_model(include_top=False, pooling="avg")
    images = _images(rng, 2, 64, 64)
    expected = model(images, training=False).numpy()
    outputs = compile_inference(model, precision="bfloat16")(images)
    assert outputs.dtype == "float32"
    # bfloat16 keeps ~3 significant digits; features of unit scale drift by a few 1e-2 at most.
    np.testing.assert_allclose(outputs.numpy(), expected, atol=0.1 * np.abs(expected).max())
    assert not np.array_equal(outputs.numpy(), expected)
    assert model.dtype_policy.name == "float32"  # the caller's model is untouched


def test_bad_arguments_are_explained():
    model = _random_model()
    with pytest.raises(ValueError, match="precision"):
        compile_inference(model, precision="float16")
    with pytest.raises(ValueError, match="`engine` must be one of"):
        compile_inference(model, engine="onnx")
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        compile_inference(model, strategy="onnx")
    flat = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="4-D"):
        compile_inference(flat, engine="plain")
