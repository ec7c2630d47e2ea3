"""`preprocess_input` (and its warning for images scaled to [0, 1]) and offline `decode_predictions`."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from keras_pvt import images
from keras_pvt.imagenet import decode_predictions, imagenet_classes
from keras_pvt.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    UnitRangeImagesWarning,
    parse_image_size,
    preprocess_input,
)


@pytest.mark.all_backends
def test_preprocess_numpy_matches_the_formula() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    out = preprocess_input(pixels)
    assert out.dtype == np.float32 and out.shape == pixels.shape
    want = (pixels / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out, want, atol=1e-5)
    white = preprocess_input(np.full((3,), 255.0))
    np.testing.assert_allclose(white, (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), rtol=1e-6)


@pytest.mark.all_backends
def test_preprocess_tensor_input_returns_a_tensor() -> None:
    import keras

    pixels = np.random.default_rng(1).uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    tensor = keras.ops.convert_to_tensor(pixels)
    out = preprocess_input(tensor)
    assert not isinstance(out, np.ndarray)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), preprocess_input(pixels), atol=1e-6)


@pytest.mark.all_backends
def test_preprocess_rejects_channels_first() -> None:
    with pytest.raises(ValueError, match="channels-last"):
        preprocess_input(np.zeros((1, 3, 8, 8)), data_format="channels_first")
    with pytest.raises(ValueError, match=r"looks like channels-first RGB \(N, 3, H, W\)"):
        preprocess_input(np.zeros((1, 3, 8, 8)))


@pytest.mark.all_backends
def test_class_list_is_imagenet_1k_in_order() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000 and len({wnid for wnid, _ in classes}) == 1000
    assert classes[0] == ("n01440764", "tench")
    assert classes[1] == ("n01443537", "goldfish")
    assert classes[999][0] == "n15075141"
    assert all(wnid.startswith("n") and len(wnid) == 9 and name for wnid, name in classes)


@pytest.mark.all_backends
def test_decode_predictions_top_k_best_first() -> None:
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [1, 0, 999]] = [0.7, 0.2, 0.1]
    preds[1, 3] = 5.0
    decoded = decode_predictions(preds, top=3)
    assert [len(row) for row in decoded] == [3, 3]
    assert decoded[0][0] == ("n01443537", "goldfish", pytest.approx(0.7))
    assert [entry[1] for entry in decoded[0][:2]] == ["goldfish", "tench"]
    assert decoded[1][0][1] == "tiger_shark" and decoded[1][0][2] == 5.0
    assert len(decode_predictions(preds)[0]) == 5


@pytest.mark.all_backends
def test_decode_predictions_errors() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 1000\)"):
        decode_predictions(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="positive integer"):
        decode_predictions(np.zeros((1, 1000)), top=0)
    assert [len(row) for row in decode_predictions(np.zeros((1, 1000)), top=np.int64(2))] == [2]


@pytest.fixture
def warnings_seen(monkeypatch):
    """Every warning raised in the test, with the once-per-process flag of the [0, 1] warning reset."""
    monkeypatch.setattr(images, "_unit_range_warned", False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield seen


def _unit_range_warnings(seen) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, UnitRangeImagesWarning)]


@pytest.mark.all_backends
def test_images_already_in_unit_range_warn_once(warnings_seen) -> None:
    scaled = np.random.default_rng(0).uniform(0.05, 0.95, (2, 8, 8, 3))
    preprocess_input(scaled)
    preprocess_input(scaled.astype(np.float32))  # once per process, not per call
    preprocess_input(keras.ops.convert_to_tensor(scaled.astype(np.float32)))
    messages = _unit_range_warnings(warnings_seen)
    assert len(messages) == 1
    assert "every value in [0, 1]" in messages[0] and "expects pixels in [0, 255]" in messages[0]
    assert "images * 255" in messages[0]
    first = next(w for w in warnings_seen if issubclass(w.category, UnitRangeImagesWarning))
    assert first.filename == __file__  # it points at the caller's line


@pytest.mark.all_backends
def test_eager_tensors_in_unit_range_warn_too(warnings_seen) -> None:
    scaled = np.random.default_rng(1).uniform(0.0, 1.0, (1, 8, 8, 3)).astype(np.float32)
    preprocess_input(keras.ops.convert_to_tensor(scaled))
    assert len(_unit_range_warnings(warnings_seen)) == 1


@pytest.mark.all_backends
def test_pixels_integers_and_black_images_do_not_warn(warnings_seen) -> None:
    rng = np.random.default_rng(2)
    preprocess_input(rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32))
    preprocess_input(rng.integers(0, 2, (2, 8, 8, 3)).astype(np.uint8))  # integer 0/1 pixels
    preprocess_input(rng.integers(0, 2, (2, 8, 8, 3)).tolist())  # a nested list of ints
    preprocess_input(np.zeros((2, 8, 8, 3), np.float32))  # black: nothing says "scaled"
    preprocess_input(np.zeros((0, 8, 8, 3), np.float32))
    assert _unit_range_warnings(warnings_seen) == []


def test_symbolic_images_are_not_looked_at(warnings_seen) -> None:
    import tensorflow as tf

    scaled = np.random.default_rng(3).uniform(0.0, 1.0, (2, 8, 8, 3)).astype(np.float32)
    list(tf.data.Dataset.from_tensor_slices(scaled).map(preprocess_input))
    tf.function(preprocess_input)(tf.constant(scaled))
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Lambda(preprocess_input)(inputs))
    assert _unit_range_warnings(warnings_seen) == []
    preprocess_input(tf.constant(scaled))  # the same values, eager: known, so it warns
    assert len(_unit_range_warnings(warnings_seen)) == 1


def test_normalize_in_pipelines_keeps_the_integer_dtype_of_pixels(warnings_seen) -> None:
    import tensorflow as tf

    from keras_pvt.data.preprocess import normalize

    ones = np.ones((8, 8, 3), np.uint8)
    np.testing.assert_allclose(normalize(tf.constant(ones)).numpy(), preprocess_input(ones), atol=1e-6)
    assert _unit_range_warnings(warnings_seen) == []


@pytest.mark.all_backends
def test_image_sizes_take_numpy_integers() -> None:
    assert parse_image_size(np.int64(224)) == (224, 224)
    size = parse_image_size((np.int32(192), np.int64(256)))
    assert size == (192, 256) and all(type(side) is int for side in size)
    with pytest.raises(ValueError, match="positive int"):
        parse_image_size((np.float32(2.0), 3))
