"""`compile_inference` and the fused-segment path: same outputs as the model (no timing here)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_pvt import PVT_V2, kernels
from keras_pvt.kernels import tf_fused, tf_xla
from keras_pvt.kernels.frozen import dense_snapshot, with_frozen_dense
from keras_pvt.kernels.inference import compile_inference, resolve_strategy
from keras_pvt.kernels.shifted_conv import shifted_depthwise_conv

from helpers import tiny_config

F32_TOL = {"rtol": 1e-4, "atol": 1e-5}


def _random_model(**kwargs) -> keras.Model:
    linear = kwargs.pop("linear", False)
    return PVT_V2(tiny_config(linear=linear), **kwargs)


def _images(rng: np.random.Generator, batch: int, height: int, width: int) -> np.ndarray:
    return rng.normal(size=(batch, height, width, 3)).astype("float32")


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("strategy", ["segments", "xla"])
@pytest.mark.slow
def test_compiled_equals_model_at_several_sizes(linear, strategy, rng):
    model = _random_model(linear=linear, include_top=False, pooling="avg")
    predict = compile_inference(model, strategy=strategy)
    for batch, height, width in [(2, 64, 64), (1, 48, 80)]:
        images = _images(rng, batch, height, width)
        expected = model(images, training=False).numpy()
        np.testing.assert_allclose(predict(images).numpy(), expected, **F32_TOL)


def test_auto_strategy_picks_xla_up_to_512x512_images_at_any_batch():
    assert resolve_strategy("auto", (1, 224, 224, 3)) == "xla"
    assert resolve_strategy("auto", (64, 512, 512, 3)) == "xla"
    assert resolve_strategy("auto", (1, 513, 512, 3)) == "segments"
    assert resolve_strategy("auto", (1, 1024, 1024, 3)) == "segments"
    assert resolve_strategy("segments", (1, 64, 64, 3)) == "segments"
    assert resolve_strategy("auto", (1, 224, 224, 3), precision="bfloat16") == "segments"


@pytest.mark.slow
def test_auto_and_plain_strategies(rng):
    model = _random_model(include_top=False, pooling="avg")
    auto, plain = compile_inference(model), compile_inference(model, strategy="plain")
    # 64x64 images go to the whole-graph XLA path (any batch), a 520x520 one (> 512 * 512) to segments.
    for batch, size in ((1, 64), (13, 64), (1, 520)):
        images = _images(rng, batch, size, size)
        expected = model(images, training=False).numpy()
        np.testing.assert_allclose(auto(images).numpy(), expected, **F32_TOL)
        np.testing.assert_allclose(plain(images).numpy(), expected, **F32_TOL)


@pytest.mark.parametrize("strategy", ["segments", "xla"])
def test_compiled_features_only_returns_every_stage(strategy, rng):
    model = _random_model(features_only=True)
    predict = compile_inference(model, strategy=strategy)
    images = _images(rng, 2, 64, 96)
    expected = model(images, training=False)
    outputs = predict(images)
    assert sorted(outputs) == ["stage1", "stage2", "stage3", "stage4"]
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name].numpy(), value.numpy(), **F32_TOL)


def test_compiled_classifier_probabilities(rng):
    model = _random_model()
    images = _images(rng, 2, 64, 64)
    probs = compile_inference(model)(images).numpy()
    np.testing.assert_allclose(probs, model(images, training=False).numpy(), **F32_TOL)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_compiled_follows_weight_updates(rng):
    model = _random_model(include_top=False, pooling="avg")
    predict = compile_inference(model)
    images = _images(rng, 1, 64, 64)
    before = predict(images).numpy()
    model.set_weights([w * 1.5 for w in model.get_weights()])
    after = predict(images).numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, model(images, training=False).numpy(), **F32_TOL)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("strategy", ["segments", "xla"])
@pytest.mark.slow
def test_frozen_weights_equal_the_model_and_ignore_later_updates(linear, strategy, rng):
    model = _random_model(linear=linear, classifier_activation=None)
    frozen = compile_inference(model, strategy=strategy, freeze_weights=True)
    live = compile_inference(model, strategy=strategy)
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


def test_frozen_dense_multiplies_by_the_snapshot(rng):
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    x = rng.normal(size=(2, 5, 5, 4)).astype("float32")
    kernel_t = rng.normal(size=(3, 4)).astype("float32")
    bias = np.array([1.0, -2.0, 0.5], "float32")
    with kernels.use(with_frozen_dense(kernels.current(), {layer: (kernel_t, bias)})):
        frozen = kernels.dense(layer, x)
    np.testing.assert_allclose(frozen, x @ kernel_t.T + bias, **F32_TOL)
    np.testing.assert_allclose(kernels.dense(layer, x), layer(x), **F32_TOL)
    snapshot = dense_snapshot(_random_model())
    assert snapshot and all(isinstance(layer, keras.layers.Dense) for layer in snapshot)
    for layer, (kernel_t, _) in snapshot.items():
        np.testing.assert_array_equal(kernel_t, np.asarray(layer.kernel).T)


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


def test_fused_segments_are_scoped():
    default = kernels.current()
    assert default is not tf_fused.FUSED
    with kernels.use(tf_fused.FUSED):
        assert kernels.current() is tf_fused.FUSED
        assert kernels.current(training=False) is tf_fused.FUSED
        assert kernels.current(training=True) is not tf_fused.FUSED
    assert kernels.current() is default


@pytest.mark.parametrize("table", [tf_fused.FUSED, tf_xla.TF_XLA], ids=lambda table: table.name)
def test_fast_paths_in_eager_mode_match_the_layers(table, rng):
    model = _random_model(include_top=False)
    images = _images(rng, 1, 64, 64)
    with kernels.use(table):
        fast = model(images, training=False).numpy()
    np.testing.assert_allclose(fast, model(images, training=False).numpy(), **F32_TOL)


def test_shifted_depthwise_conv_equals_the_layer(rng):
    layer = keras.layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")
    images = _images(rng, 2, 9, 13)
    expected = layer(images).numpy()
    shifted = shifted_depthwise_conv(images, layer.kernel, layer.bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(shifted), expected, **F32_TOL)


def test_fast_paths_are_off_in_training():
    default = kernels.current()
    for table in (tf_fused.FUSED, tf_fused.FUSED_IN_PIECES, tf_xla.TF_XLA):
        with kernels.use(table):
            assert kernels.current(training=True).name in ("tf_plain", "tf_training")
    assert kernels.current() is default


def test_bad_arguments_are_explained():
    model = _random_model()
    with pytest.raises(ValueError, match="precision"):
        compile_inference(model, precision="float16")
    with pytest.raises(ValueError, match="strategy"):
        compile_inference(model, strategy="onnx")
    flat = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="4-D"):
        compile_inference(flat)


def _reference_attention(q, keys, values):
    scores = q @ keys
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ values


@pytest.mark.parametrize("groups", [(2,), (1, 3)])
def test_attention_in_query_pieces_equals_whole(groups, rng, monkeypatch):
    import tensorflow as tf

    q = rng.normal(size=(*groups, 50, 4)).astype("float32")
    keys = rng.normal(size=(*groups, 4, 7)).astype("float32")
    values = rng.normal(size=(*groups, 7, 4)).astype("float32")
    expected = _reference_attention(q, keys, values)
    # 2 * 3 * 50 * 7 scores: far over two pieces of 30, so the queries go in pieces (the last one short).
    monkeypatch.setattr(tf_fused, "ATTENTION_SCORES_PER_PIECE", 30)
    spec = tf.TensorSpec([None] * q.ndim, tf.float32)

    def attention(q, keys, values):
        return kernels.attention(q, keys, values, dropout=lambda weights: weights)

    pieced = tf.function(attention, input_signature=[spec] * 3)  # shapes unknown when traced
    with kernels.use(tf_fused.FUSED_IN_PIECES):
        np.testing.assert_allclose(pieced(q, keys, values).numpy(), expected, **F32_TOL)
        np.testing.assert_allclose(attention(q, keys, values).numpy(), expected, **F32_TOL)
    with kernels.use(tf_fused.FUSED):
        np.testing.assert_allclose(attention(q, keys, values).numpy(), expected, **F32_TOL)


@pytest.mark.slow
def test_segments_path_runs_attention_in_pieces_for_large_images(rng, monkeypatch):
    from keras_pvt.kernels import inference

    monkeypatch.setattr(tf_fused, "ATTENTION_SCORES_PER_PIECE", 64)
    monkeypatch.setattr(inference, "ATTENTION_PIECES_MIN_IMAGE_PIXELS", 32 * 32)
    model = _random_model(include_top=False, pooling="avg")
    predict = compile_inference(model, strategy="segments")
    for size in (32, 64):  # whole attention, then pieces
        images = _images(rng, 2, size, size + 16)
        expected = model(images, training=False).numpy()
        np.testing.assert_allclose(predict(images).numpy(), expected, **F32_TOL)
