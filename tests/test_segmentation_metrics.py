"""`SegmentationCrossEntropy`, `MeanIoU`, `PixelAccuracy` against plain NumPy on random data, and
their refusal of masks that do not fit the logits (eagerly and inside `model.fit`)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt.segmentation.losses import SegmentationCrossEntropy
from keras_pvt.segmentation.mask_checks import same_aspect_ratio
from keras_pvt.segmentation.metrics import MeanIoU, PixelAccuracy

pytestmark = pytest.mark.all_backends

CLASSES = 5
IGNORE = 255


def _data(rng, batch=2, height=9, width=7, ignored=0.2, size=None):
    labels = rng.integers(0, CLASSES, (batch, height, width)).astype("int32")
    labels[rng.random(labels.shape) < ignored] = IGNORE
    h, w = size or (height, width)
    logits = rng.normal(size=(batch, h, w, CLASSES)).astype("float32")
    return labels, logits


def _numpy_cross_entropy(labels, logits, ignore=IGNORE):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != ignore
    if not valid.any():
        return 0.0
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return float(-picked[valid].mean())


def _numpy_confusion(labels, logits, ignore=IGNORE):
    predicted = logits.argmax(-1)
    valid = labels != ignore
    confusion = np.zeros((CLASSES, CLASSES))
    np.add.at(confusion, (labels[valid], predicted[valid]), 1)
    return confusion


def _numpy_miou(confusion):
    """mmseg's IoUMetric: intersect / union per class, np.nanmean over classes."""
    intersect = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersect
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = intersect / union
    return iou, float(np.nanmean(iou))


def _bilinear_half_pixel(x, out_h, out_w):
    """PyTorch `F.interpolate(mode="bilinear", align_corners=False)` of (B, h, w, C), NumPy."""

    def axis(out, size):
        src = np.maximum((np.arange(out) + 0.5) * size / out - 0.5, 0.0)
        low = np.minimum(np.floor(src).astype(int), size - 1)
        high = np.minimum(low + 1, size - 1)
        return low, high, src - low

    (h0, h1, fh), (w0, w1, fw) = axis(out_h, x.shape[1]), axis(out_w, x.shape[2])
    top = x[:, h0][:, :, w0] * (1 - fw)[None, None, :, None] + x[:, h0][:, :, w1] * fw[None, None, :, None]
    bottom = x[:, h1][:, :, w0] * (1 - fw)[None, None, :, None] + x[:, h1][:, :, w1] * fw[None, None, :, None]
    return top * (1 - fh)[None, :, None, None] + bottom * fh[None, :, None, None]


def test_cross_entropy_matches_numpy_with_ignored_pixels(rng):
    labels, logits = _data(rng)
    loss = SegmentationCrossEntropy()(labels, logits)
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), _numpy_cross_entropy(labels, logits), 1e-5)
    # (B, H, W, 1) masks and a custom ignore label
    labels[labels == IGNORE] = 7
    loss = SegmentationCrossEntropy(ignore_label=7)(labels[..., None], logits)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(loss)), _numpy_cross_entropy(labels, logits, ignore=7), 1e-5
    )


def test_all_ignored_batch_gives_zero_loss_not_nan(rng):
    labels, logits = _data(rng)
    labels[:] = IGNORE
    loss = SegmentationCrossEntropy()
    assert float(ops.convert_to_numpy(loss(labels, logits))) == 0.0
    with pytest.raises(ValueError, match="sample weights"):
        loss(labels, logits, sample_weight=np.ones(2, "float32"))


def test_stride4_logits_are_resized_bilinearly_align_corners_false(rng):
    labels, small = _data(rng, height=18, width=13, size=(5, 4))
    big = _bilinear_half_pixel(small.astype("float64"), 18, 13).astype("float32")
    expected = _numpy_cross_entropy(labels, big)
    loss = SegmentationCrossEntropy()(labels, small)
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), expected, rtol=1e-5)
    metric = MeanIoU(CLASSES)
    metric.update_state(labels, small)
    np.testing.assert_array_equal(ops.convert_to_numpy(metric.confusion), _numpy_confusion(labels, big))


def test_mean_iou_and_pixel_accuracy_accumulate_like_mmseg(rng):
    miou, accuracy = MeanIoU(CLASSES), PixelAccuracy()
    confusion = np.zeros((CLASSES, CLASSES))
    for _ in range(3):
        labels, logits = _data(rng)
        miou.update_state(labels, logits)
        accuracy.update_state(labels, logits)
        confusion += _numpy_confusion(labels, logits)
    np.testing.assert_array_equal(ops.convert_to_numpy(miou.confusion), confusion)
    iou, mean = _numpy_miou(confusion)
    np.testing.assert_allclose(miou.per_class_iou(), iou, rtol=1e-6)
    np.testing.assert_allclose(float(ops.convert_to_numpy(miou.result())), mean, rtol=1e-6)
    expected_accuracy = np.trace(confusion) / confusion.sum()
    np.testing.assert_allclose(float(ops.convert_to_numpy(accuracy.result())), expected_accuracy, rtol=1e-6)
    miou.reset_state()
    accuracy.reset_state()
    assert float(ops.convert_to_numpy(miou.result())) == 0.0
    assert float(ops.convert_to_numpy(accuracy.result())) == 0.0


def test_classes_never_seen_are_nan_and_left_out_of_the_mean():
    labels = np.array([[[0, 0, 1, IGNORE]]], "int32")  # classes 2..4 never labelled
    logits = np.zeros((1, 1, 4, CLASSES), "float32")
    logits[0, 0, :, 0] = 1.0  # predicts 0 everywhere ...
    logits[0, 0, 3, 3] = 9.0  # ... but 3 on the ignored pixel (not counted)
    metric = MeanIoU(CLASSES)
    metric.update_state(labels, logits)
    iou = metric.per_class_iou()
    np.testing.assert_allclose(iou[:2], [2 / 3, 0.0])
    assert np.isnan(iou[2:]).all()
    assert float(ops.convert_to_numpy(metric.result())) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="classes"):
        MeanIoU(3).update_state(labels, logits)
    assert MeanIoU(np.int64(CLASSES)).num_classes == CLASSES
    for wrong in (0, 3.7, True):
        with pytest.raises(ValueError, match=f"num_classes must be an integer >= 1 .*got {wrong}"):
            MeanIoU(wrong)


def test_serialization_round_trip():
    for item in (SegmentationCrossEntropy(ignore_label=9), MeanIoU(7, ignore_label=0), PixelAccuracy(3)):
        config = keras.saving.serialize_keras_object(item)
        again = keras.saving.deserialize_keras_object(config)
        assert type(again) is type(item) and again.get_config() == item.get_config()


def _every_user():
    return [SegmentationCrossEntropy(), MeanIoU(CLASSES).update_state, PixelAccuracy().update_state]


@pytest.mark.parametrize("label", [CLASSES, 9, -1])
def test_labels_outside_the_classes_are_refused(rng, label):
    labels, logits = _data(rng, ignored=0.0)
    labels[1, 2, 3] = label
    for use in _every_user():
        with pytest.raises(
            ValueError,
            match=rf"labels outside 0..4 .*ignore label 255\. Found 1 pixel\(s\), labels {label}\.",
        ):
            use(labels, logits)
    labels[1, 2, 3] = 7  # the ignore label of these: accepted, left out
    loss = SegmentationCrossEntropy(ignore_label=7)(labels, logits)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(loss)), _numpy_cross_entropy(labels, logits, 7), 1e-5
    )


def test_float_masks_must_hold_whole_numbers(rng):
    labels, logits = _data(rng, ignored=0.0)
    whole = labels.astype("float32")
    expected = _numpy_cross_entropy(labels, logits)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(SegmentationCrossEntropy()(whole, logits))), expected, 1e-5
    )
    metric = MeanIoU(CLASSES)
    metric.update_state(whole, logits)
    np.testing.assert_array_equal(ops.convert_to_numpy(metric.confusion), _numpy_confusion(labels, logits))
    fractional = whole.copy()
    fractional[0, 0, 0] = 1.7
    fractional[1, 0, 0] = np.nan
    for use in _every_user():
        with pytest.raises(
            ValueError, match=r"not whole class indices\. Found 2 pixel\(s\), values 1\.7, nan"
        ):
            use(fractional, logits)


def test_masks_of_another_aspect_ratio_or_batch_size_are_refused(rng):
    labels, logits = _data(rng, height=8, width=8)
    for wide in (np.zeros((2, 8, 16), "int32"), np.zeros((2, 16, 8, 1), "int32")):
        for use in _every_user():
            with pytest.raises(
                ValueError, match=r"height:width differs .*masks \(2, \d+, \d+\), logits \(2, 8, 8, 5\)"
            ):
                use(wide, logits)
    for use in _every_user():
        with pytest.raises(
            ValueError, match=r"differ in batch size \(masks \(3, 8, 8\), logits \(2, 8, 8, 5\)\)"
        ):
            use(np.zeros((3, 8, 8), "int32"), logits)
    # scaled copies are resized, odd sizes included (stride-4 logits of 18 x 13 masks: 5 x 4)
    assert same_aspect_ratio((18, 13), (5, 4)) and same_aspect_ratio((8, 8), (16, 16))
    assert same_aspect_ratio((64, 64), (16, 17)) and not same_aspect_ratio((64, 64), (16, 18))
    assert not same_aspect_ratio((8, 16), (8, 8)) and not same_aspect_ratio((480, 640), (640, 480))
    labels, logits = _data(rng, 2, 18, 13, size=(5, 4))
    SegmentationCrossEntropy()(labels, logits)


def test_refusals_inside_model_fit(rng):
    """In `fit` the checks run in the traced step: a graph assertion (TensorFlow), a callback (JAX),
    or eagerly (PyTorch); each names the problem."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(CLASSES, 1)(inputs))
    model.compile("sgd", loss=SegmentationCrossEntropy(), metrics=[MeanIoU(CLASSES)])
    images = np.zeros((4, 8, 8, 3), "float32")
    masks = np.zeros((4, 8, 8), "int32")
    model.fit(images, masks, batch_size=2, verbose=0)
    masks[3, 0, 0] = 9
    with pytest.raises(
        Exception, match=r"(?s)Bad segmentation masks for \w+: labels outside 0..4 .*labels? .*9"
    ):
        model.fit(images, masks, batch_size=2, verbose=0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="run-time shapes: TensorFlow graphs")
def test_graph_assertions_with_run_time_shapes():
    import tensorflow as tf

    masks_spec = tf.TensorSpec((None, 8, 16), tf.int32)
    loss = tf.function(
        SegmentationCrossEntropy().__call__,
        input_signature=[masks_spec, tf.TensorSpec((None, None, None, CLASSES), tf.float32)],
    )
    masks, half = np.zeros((2, 8, 16), "int32"), np.zeros((2, 4, 8, CLASSES), "float32")
    assert float(loss(masks, half)) == pytest.approx(np.log(CLASSES))
    cases = [
        (
            np.zeros((3, 8, 16), "int32"),
            half,
            r"differ in batch size.*\[masks\] \[3 8 16\] \[logits\] \[2 4 8 5\]",
        ),
        (
            masks,
            np.zeros((2, 8, 8, CLASSES), "float32"),
            r"height:width differs.*\[2 8 16\] \[logits\] \[2 8 8 5\]",
        ),
        (
            np.full((2, 8, 16), 9, "int32"),
            half,
            r"labels outside 0..4.*\[pixels\] \[256\] \[labels from\] \[9\]",
        ),
    ]
    for labels, logits, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loss(labels, logits)
