"""`SegmentationCrossEntropy` is Keras' `SparseCategoricalCrossentropy(from_logits=True,
ignore_class=...)` on checked masks: the same values, gradients and float32 computation under mixed
precision as Keras' loss and as mmseg's non-ignored mean; what it adds is the masks Keras' loss takes
silently (fractional labels) or cannot take (stride-4 logits)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt.segmentation.losses import SegmentationCrossEntropy

pytestmark = pytest.mark.all_backends

CLASSES = 6
IGNORE = 255


def _data(rng, batch=3, height=10, width=7, ignored=0.25):
    labels = rng.integers(0, CLASSES, (batch, height, width)).astype("int32")
    labels[rng.random(labels.shape) < ignored] = IGNORE
    logits = (3 * rng.normal(size=(batch, height, width, CLASSES))).astype("float32")
    return labels, logits


def _mmseg_mean_and_gradient(labels, logits):
    """mmseg's ``avg_non_ignore=True`` cross-entropy (sum over valid pixels / their count) and its
    gradient with respect to the logits, in float64."""
    logits = logits.astype("float64")
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    valid = labels != IGNORE
    onehot = np.eye(CLASSES)[np.where(valid, labels, 0)]
    count = max(int(valid.sum()), 1)
    loss = -(np.log((probs * onehot).sum(-1)) * valid).sum() / count
    return loss, (probs - onehot) * valid[..., None] / count


def _value_and_gradient(loss, labels, logits):
    """The loss and its gradient with respect to `logits`, on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.constant(logits)
        with tf.GradientTape() as tape:
            tape.watch(variable)
            value = loss(labels, variable)
        return float(value), tape.gradient(value, variable).numpy()
    if backend == "jax":
        import jax

        value, gradient = jax.value_and_grad(lambda x: loss(labels, x))(logits)
        return float(value), np.asarray(gradient)
    import torch

    variable = torch.tensor(logits, requires_grad=True)
    value = loss(labels, variable)
    value.backward()
    return float(value.detach().cpu()), variable.grad.cpu().numpy()


def test_same_values_and_gradients_as_keras_loss_and_mmseg(rng):
    labels, logits = _data(rng)
    ours = _value_and_gradient(SegmentationCrossEntropy(), labels, logits)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    theirs = _value_and_gradient(keras_loss, labels, logits)
    expected = _mmseg_mean_and_gradient(labels, logits)
    for got in (ours, theirs):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-9)
    assert np.all(ours[1][labels == IGNORE] == 0)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-7)


def test_mixed_precision_logits_are_taken_in_float32(rng):
    labels, logits = _data(rng)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        loss = SegmentationCrossEntropy()
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    finally:
        keras.config.set_dtype_policy(previous)
    assert loss.dtype == keras_loss.dtype == "float32"
    for half in ("float16", "bfloat16"):
        low = ops.cast(logits, half)
        value = loss(labels, low)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        widened = ops.convert_to_numpy(ops.cast(low, "float32"))
        expected, _ = _mmseg_mean_and_gradient(labels, widened)
        np.testing.assert_allclose(float(ops.convert_to_numpy(value)), expected, rtol=1e-6)
        np.testing.assert_allclose(
            float(ops.convert_to_numpy(value)),
            float(ops.convert_to_numpy(keras_loss(labels, low))),
            rtol=1e-7,
        )


def test_what_keras_loss_alone_would_take_silently_or_not_at_all(rng):
    labels, logits = _data(rng, ignored=0.0)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    fractional = labels.astype("float32")
    fractional[0, 0, 0] = 1.7  # a bilinearly resized mask
    assert np.isfinite(float(ops.convert_to_numpy(keras_loss(fractional, logits))))  # counted as 1
    with pytest.raises(ValueError, match="not whole class indices"):
        SegmentationCrossEntropy()(fractional, logits)
    small = logits[:, ::2, ::2]  # stride-2 logits of the 10 x 7 masks: 5 x 4, resized to the masks
    with pytest.raises(Exception):  # noqa: B017 (each backend words its shape error its own way)
        keras_loss(labels, small)
    resized = ops.image.resize(small, (10, 7), interpolation="bilinear", antialias=False)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(SegmentationCrossEntropy()(labels, small))),
        float(ops.convert_to_numpy(keras_loss(labels, resized))),
        rtol=1e-6,
    )


def test_configs_saved_before_keras_loss_underneath_still_load():
    saved = {
        "module": "keras_pvt.segmentation.losses",
        "class_name": "SegmentationCrossEntropy",
        "config": {"name": "segmentation_cross_entropy", "ignore_label": 7},
        "registered_name": "keras_pvt>SegmentationCrossEntropy",
    }
    loss = keras.saving.deserialize_keras_object(saved)
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert loss.ignore_class == loss.ignore_label == 7 and loss.from_logits
    assert loss.get_config() == saved["config"]
    with pytest.raises(TypeError):  # the mean over non-ignored pixels is its only reduction
        SegmentationCrossEntropy(reduction="sum")
