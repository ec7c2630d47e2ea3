"""Export of a segmenter: SavedModel and TFLite with per-pixel verification (pixel agreement, mIoU)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2
from keras_pvt.export import (
    TFLiteRunner,
    convert_to_tflite,
    format_report,
    op_histogram,
    verify_tflite,
)
from keras_pvt.export.dense import compare_dense, confusion_matrix, mean_iou, per_class_iou
from keras_pvt.segmentation import SemanticFPN

from helpers import tiny_config

pytest.importorskip("ai_edge_litert")

CLASSES = 4
SIZE = 64


def _segmenter() -> keras.Model:
    """A small Semantic FPN: the real head (nearest and bilinear resizes, BatchNorm) on a tiny PVT-v2."""
    return SemanticFPN(tiny_config(embed_dims=(8, 16, 24, 32)), CLASSES, fpn_channels=16, head_channels=8)


@pytest.fixture(scope="module")
def model():
    return _segmenter()


def _images(count, height=SIZE, width=SIZE, seed=0):
    return np.random.default_rng(seed).standard_normal((count, height, width, 3)).astype(np.float32)


def test_dense_metrics_follow_their_definitions():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
    confusion = confusion_matrix(truth, predicted, 4, ignore_label=255)
    assert confusion.sum() == 7 and confusion[0, 1] == 1 and confusion[2, 0] == 1
    iou = per_class_iou(confusion)
    np.testing.assert_allclose(iou[:3], [1 / 3, 3 / 4, 1 / 2])
    assert np.isnan(iou[3])  # class 3 neither true nor predicted: not counted
    assert mean_iou(confusion) == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_compare_dense_against_keras_and_ground_truth():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    exported = reference.copy()
    exported[0, 0, 0] = exported[0, 0, 0, ::-1] * 10  # one pixel's scores changed
    truth = reference.argmax(-1)
    agreement = compare_dense(reference, exported, truth)
    changed = int(reference[0, 0, 0].argmax() != exported[0, 0, 0].argmax())
    assert agreement.pixel_agreement == pytest.approx(1 - changed / 128)
    assert agreement.keras_mean_iou == 1.0 and agreement.keras_pixel_accuracy == 1.0
    assert agreement.export_pixel_accuracy == pytest.approx(1 - changed / 128)
    with pytest.raises(ValueError, match=r"one \(H, W\) mask per verification image"):
        compare_dense(reference, exported, truth[:1])


@pytest.fixture(scope="module")
def fp32(model, tmp_path_factory):
    """The default conversion of a segmenter: float32, dynamic batch/height/width, verified."""
    path = tmp_path_factory.mktemp("fp32") / "seg.tflite"
    return convert_to_tflite(model, path, verify_images=_images(2), runs=1)


@pytest.mark.slow  # exports a model (seconds)
def test_tflite_float_is_builtin_only_dynamic_and_matches_keras(model, fp32):
    report = fp32.verification
    assert report.ok and report.max_abs_diff_overall <= 1e-4 and report.top1_agreement is None
    assert report.dense.pixel_agreement >= 0.999 and report.min_pixel_agreement == 0.999
    histogram = op_histogram(fp32.path)
    assert not [op for op in histogram if op.startswith("Flex") or op == "CUSTOM"]
    assert histogram["RESIZE_BILINEAR"] > 0 and histogram["GATHER"] > 0  # bilinear, PyTorch nearest
    json.dumps(fp32.to_dict())  # the report's dense part serialises
    images = _images(1, 45, 71, seed=5)  # odd, not square: the nearest/bilinear rules at run time
    exported = TFLiteRunner(fp32.path, threads=1)(images)["logits"]
    np.testing.assert_allclose(exported, model.predict(images, verbose=0), atol=1e-4)


@pytest.mark.slow  # exports a model (seconds)
def test_pixel_agreement_below_the_minimum_is_a_failure(model, fp32):
    report = verify_tflite(fp32.path, model, _images(1, seed=3), runs=1, min_pixel_agreement=1.01)
    assert not report.ok and "pixel agreement" in report.failures[0]
    assert "FAILURE: pixel agreement" in format_report(report)


@pytest.mark.slow  # exports a model (seconds)
def test_masks_for_a_classifier_are_refused(fp32, tmp_path):
    classifier = PVT_V2(tiny_config(embed_dims=(8, 16, 24, 32)))
    with pytest.raises(ValueError, match="segmenters only"):
        verify_tflite(
            fp32.path, classifier, _images(1), masks=np.zeros((1, SIZE, SIZE), np.int32), dense=False
        )


@pytest.mark.slow
def test_cli_exports_a_dynamic_saved_model_of_a_segmenter(model, tmp_path, capsys):
    from keras_pvt.cli import main

    model.save(tmp_path / "seg.keras")
    output = tmp_path / "seg_saved_model"
    rc = main(
        [
            "export",
            str(tmp_path / "seg.keras"),
            "--format",
            "saved_model",
            "--output",
            str(output),
            "--runs",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert (
        "pixel agreement   100.00%" in printed
        and "mIoU vs Keras     100.00%" in printed
        and "top-1" not in printed
    )
    report = json.loads((tmp_path / "seg_saved_model.report.json").read_text())
    assert report["ok"] and report["input_shape"] == [None, None, None, 3]
    assert report["dense"]["pixel_agreement"] == 1.0 and report["min_pixel_agreement"] == 0.999
    serve = tf.saved_model.load(str(output)).signatures["serving_default"]
    images = _images(1, 45, 71, seed=4)  # any size, odd and not square
    logits = serve(images=tf.constant(images))["logits"].numpy()
    np.testing.assert_allclose(logits, model.predict(images, verbose=0), atol=1e-5)
