"""`preprocess_input` and offline `decode_predictions`."""

from __future__ import annotations

import numpy as np
import pytest

from keras_pvt.imagenet import decode_predictions, imagenet_classes
from keras_pvt.images import IMAGENET_MEAN, IMAGENET_STD, preprocess_input


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
