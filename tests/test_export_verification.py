"""Verification with teeth: default bounds per format and mode, held-out verification images, and
files broken on purpose (all-zero outputs, scaled heads, degenerate calibration) that must fail."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2
from keras_pvt.cli import main
from keras_pvt.data.shapes import render_example
from keras_pvt.export import (
    DEFAULT_BOUNDS,
    VerificationError,
    VerificationReport,
    convert_to_tflite,
    default_bounds,
    format_report,
    verify_tflite,
)
from keras_pvt.export import tflite as tflite_module
from keras_pvt.export.bounds import near_tie_fraction, relative_error, resolve_bounds, tie_error
from keras_pvt.export.dense import DenseAgreement
from keras_pvt.export.images import check_calibration_images, random_images, verification_images
from keras_pvt.export.saved_model import input_spec
from keras_pvt.export.tflite import TFLiteOptions, VerifyOptions, _representative_images
from keras_pvt.export.verify import _compare, judge
from keras_pvt.images import preprocess_input

from helpers import tiny_config

pytest.importorskip("ai_edge_litert")

SIZE = 64
CLASSES = 6


# ---------------------------------------------------------------------------------- the figures
def test_relative_error_is_centred_on_the_last_axis():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((16, CLASSES))
    probabilities = np.asarray(keras.ops.softmax(0.01 * logits), np.float64)  # nearly uniform
    uniform = np.full_like(probabilities, 1 / CLASSES)
    # a file that outputs the rows' means scores 1.0 however close to uniform the outputs are
    assert relative_error(probabilities, uniform) == pytest.approx(1.0)
    assert relative_error(logits - logits.mean(-1, keepdims=True), np.zeros_like(logits)) == pytest.approx(1)
    assert relative_error(logits, logits) == 0.0
    assert relative_error(logits, 2 * logits) > 1.0
    single = rng.standard_normal((4, 1)) + 5  # one score per row: not centred
    assert relative_error(single, np.zeros_like(single)) == pytest.approx(1.0)
    assert relative_error(logits, np.full_like(logits, np.nan)) == float("inf")
    assert relative_error(np.zeros((2, 3)), np.ones((2, 3))) == float("inf")


def test_near_ties_are_the_rows_a_file_within_the_bound_could_flip():
    confident = [8.0, 0.0, 0.0, 0.0]
    tied = [1.0, 0.99, 0.0, 0.0]
    reference = np.array([confident, tied, tied, confident])
    assert near_tie_fraction(reference, 0.1) == 0.5
    assert near_tie_fraction(reference, 1.0) == 1.0  # sqrt(2) x the norm bounds every margin
    assert near_tie_fraction(reference, 0.0) == 0.0
    assert near_tie_fraction(np.ones((3, 1)), 0.1) is None
    # a flip needs two scores to move by the margin: an error within the bound cannot flip the rest
    row = np.array([confident])
    spread = np.linalg.norm(row - row.mean())
    error = np.array([[-0.5, 0.5, 0, 0]]) * 0.1 * spread * np.sqrt(2)  # norm = 0.1 x spread
    assert relative_error(row, row + error) == pytest.approx(0.1)
    assert (row + error).argmax() == 0 and near_tie_fraction(row, 0.1) == 0.0
    # judged at 4x the measured error (errors spread over the images), never above the bound
    assert tie_error(0.01, 0.3) == pytest.approx(0.04) and tie_error(0.5, 0.3) == 0.3


def test_bounds_default_per_mode_and_are_overridden_one_by_one():
    for (format_, mode), bounds in DEFAULT_BOUNDS.items():
        assert 0 < bounds.max_relative_error < 1 and 0.5 < bounds.min_top1 <= 1
        assert resolve_bounds(format_, mode) == bounds == default_bounds(format_, mode)
    tight, loose = default_bounds("tflite", "none"), default_bounds("tflite", "int8-full")
    assert tight.max_relative_error < loose.max_relative_error and tight.min_top1 > loose.min_top1
    chosen = resolve_bounds("tflite", "int8", tolerance=0.05, min_top1=None, min_pixel_agreement="auto")
    default = default_bounds("tflite", "int8")
    assert chosen.max_relative_error == 0.05 and chosen.min_top1 == default.min_top1
    assert chosen.min_pixel_agreement == default.min_pixel_agreement
    assert resolve_bounds("tflite", "int8", min_top1=1).min_top1 == 1.0
    with pytest.raises(ValueError, match="must be a number or None"):
        resolve_bounds("tflite", "int8", min_top1="high")
    with pytest.raises(ValueError, match=">= 0"):
        resolve_bounds("tflite", "int8", tolerance=-1.0)
    with pytest.raises(ValueError, match="No default bounds for tflite/int4"):
        default_bounds("tflite", "int4")


def test_each_source_of_verification_images_meets_the_bound_on_its_own():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((8, CLASSES))
    exported = reference.copy()
    exported[4:] = reference[4:].mean(-1, keepdims=True)  # the generated half: all information lost
    pooled = _compare({"p": reference}, {"p": exported}, 0.3)
    split = _compare({"p": reference}, {"p": exported}, 0.3, {"held_out": 4, "generated": 4})
    assert pooled.relative_error["p"] == pytest.approx(np.sqrt(0.5), rel=0.3)  # diluted by the good half
    assert split.relative_error["p"] == pytest.approx(1.0)
    # top-1 is judged on the held-out images (the user's kind), the relative error on each source
    assert split.agreement_source == "held_out" and split.top1_agreement == 1.0
    assert pooled.agreement_source is None
    with pytest.raises(ValueError, match="do not add up to the 8 images"):
        _compare({"p": reference}, {"p": exported}, 0.3, {"held_out": 4, "generated": 5})


def _report(relative=0.01, top1=1.0, near_ties=0.0, bound=0.1, minimum=0.9, dense=None):
    return VerificationReport(
        path="m.tflite",
        format="tflite",
        size_bytes=1,
        input_shape=[1, SIZE, SIZE, 3],
        input_dtype="float32",
        sample_shape=[16, SIZE, SIZE, 3],
        output_names=["predictions"],
        max_abs_diff={"predictions": 0.1},
        mean_abs_diff={"predictions": 0.01},
        top1_agreement=None if dense else top1,
        latency_ms_median=1.0,
        latency_runs=1,
        threads=1,
        latency_input_shape=[1, SIZE, SIZE, 3],
        relative_error={"predictions": relative},
        near_tie_fraction=near_ties,
        max_relative_error=bound,
        min_top1=minimum,
        min_pixel_agreement=minimum,
        dense=dense,
    )


@pytest.mark.parametrize(
    ("figures", "status", "says"),
    [
        ({}, "OK", None),
        ({"top1": 0.5, "near_ties": 0.6}, "INCONCLUSIVE", "6 of the images|60.0% of the images"),
        ({"top1": 1.0, "near_ties": 0.2}, "INCONCLUSIVE", "more than the 10.0%"),
        ({"top1": 0.5, "near_ties": 0.6, "relative": 0.9}, "FAILED", "relative error 0.9 exceeds"),
        ({"top1": 0.8, "near_ties": 0.05}, "FAILED", "top-1 agreement 0.800 is below the required 0.900"),
        ({"relative": float("inf")}, "FAILED", "relative error inf"),
    ],
)
def test_the_judgement_of_a_report(figures, status, says):
    report = _report(**figures)
    judge(report)
    assert report.status == status and report.ok == (status != "FAILED")
    text = " ".join(report.failures) + (report.inconclusive or "")
    if says:
        assert any(part in text for part in says.split("|")), text
    data = report.to_dict()
    assert data["status"] == status and data["relative_error"] == report.relative_error
    assert data["max_relative_error"] == 0.1 and data["min_top1"] == 0.9


def test_pixel_agreement_is_judged_like_top1():
    def dense(agreement):
        return DenseAgreement(num_classes=4, pixels=1000, pixel_agreement=agreement, mean_iou_vs_keras=0.5)

    failing = _report(dense=dense(0.7), near_ties=0.01)
    judge(failing)
    assert failing.status == "FAILED" and "pixel agreement 0.7000" in failing.failures[0]
    undecided = _report(dense=dense(0.7), near_ties=0.5)
    judge(undecided)
    assert undecided.status == "INCONCLUSIVE" and "of the pixels are near ties" in undecided.inconclusive


def test_the_printed_report_gives_the_status_figures_and_bounds():
    report = _report(top1=0.5, near_ties=0.6, relative=0.9)
    judge(report)
    printed = format_report(report)
    assert "status            FAILED" in printed
    assert "rel. error predictions 0.9 (bound 0.1)" in printed
    assert "top-1 agreement   50.0% (required 90.0%)" in printed
    assert "near ties         60.0% of the images" in printed
    assert "INCONCLUSIVE: top-1 agreement cannot judge" in printed
    assert "FAILURE: output 'predictions': relative error 0.9 exceeds the bound 0.1" in printed


# ---------------------------------------------------------------------------------- the images
@pytest.fixture(scope="module")
def shapes():
    """120 rendered shape images (model-ready float32) and their labels."""
    pairs = [render_example(SIZE, 7, index) for index in range(120)]
    pixels = np.stack([image for image, _ in pairs]).astype(np.float32)
    labels = np.array([label for _, label in pairs])
    return np.asarray(preprocess_input(pixels), np.float32), labels


def test_verification_images_are_held_out_from_calibration_then_generated(shapes):
    images, _ = shapes
    model = PVT_V2(tiny_config())
    spec = input_spec(model, SIZE, 1)
    options = TFLiteOptions(quantize="int8", representative_data=images[:40], num_calibration=32)
    calibration, held_out = _representative_images(options, VerifyOptions(num_verify=16), (SIZE, SIZE), model)
    np.testing.assert_array_equal(calibration, images[:32])
    np.testing.assert_array_equal(held_out, images[32:40])  # half of 16, after the calibration images
    verify = verification_images(model, spec, (SIZE, SIZE), 16, held_out=held_out)
    assert verify.shape == (16, SIZE, SIZE, 3)
    np.testing.assert_array_equal(verify[:8], images[32:40])
    assert not any(np.array_equal(v, c) for v in verify for c in calibration)
    # a set no larger than --num-calibration leaves nothing over: generated images only
    short = TFLiteOptions(quantize="int8", representative_data=images[:20])
    calibration, held_out = _representative_images(short, VerifyOptions(num_verify=5), None, model)
    assert len(calibration) == 20 and len(held_out) == 0
    verify = verification_images(model, input_spec(model, None, None), (SIZE, SIZE), 5, held_out=held_out)
    np.testing.assert_array_equal(verify, random_images(5, (SIZE, SIZE)))
    # given images are used as they are
    _, held_out = _representative_images(options, VerifyOptions(verify_images=images[:3]), None, model)
    assert len(held_out) == 0


def test_generated_images_are_smooth_stand_ins_for_photos():
    images = random_images(4, (64, 48))
    assert images.shape == (4, 64, 48, 3) and abs(images.mean()) < 0.2 and images.std() == pytest.approx(1)
    neighbours = np.corrcoef(images[:, :-1].ravel(), images[:, 1:].ravel())[0, 1]
    assert neighbours > 0.8  # spatially correlated, as photos are; white noise would give 0
    raw = random_images(2, (8, 8), raw_pixels=True)
    assert raw.min() >= 0 and raw.max() <= 255 and np.all(raw == np.round(raw))


def test_flat_calibration_images_are_refused():
    black = np.asarray(preprocess_input(np.zeros((4, SIZE, SIZE, 3), np.float32)), np.float32)
    with pytest.raises(ValueError, match=r"all flat .* e\.g\. all black"):
        check_calibration_images(black)
    check_calibration_images(np.concatenate([black, random_images(1, (SIZE, SIZE))]))  # one is enough


# ---------------------------------------------------------------------------------- broken files
def _fit_head(model, images, labels):
    """Fit the classifier (ridge regression on the pooled features): separated classes at once."""
    pooled = keras.Model(model.input, model.get_layer("avg_pool").output)
    features = np.asarray(keras.ops.convert_to_numpy(pooled(images)), np.float64)
    design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    targets = 10.0 * (np.eye(CLASSES)[labels] - 1.0 / CLASSES)
    gram = design.T @ design
    gram += 0.1 * np.trace(gram) / len(gram) * np.eye(len(gram))
    solution = np.linalg.solve(gram, design.T @ targets)
    model.get_layer("head").set_weights([solution[:-1].astype(np.float32), solution[-1].astype(np.float32)])
    return model


def _with_head(model, scale):
    """A copy of `model` whose classifier weights are multiplied by `scale`."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    head = copy.get_layer("head")
    head.set_weights([scale * weight for weight in head.get_weights()])
    return copy


@pytest.fixture(scope="module")
def trained(shapes):
    images, labels = shapes
    keras.utils.set_random_seed(0)
    return _fit_head(PVT_V2(tiny_config(num_classes=CLASSES)), images[:96], labels[:96])


@pytest.fixture(scope="module")
def zero_head_file(trained, tmp_path_factory):
    """A float32 file of `trained` with its classifier zeroed: uniform probabilities for every image."""
    path = tmp_path_factory.mktemp("zero") / "zero_head.tflite"
    convert_to_tflite(_with_head(trained, 0.0), path, image_size=SIZE, verify=False)
    return path


@pytest.mark.slow  # converts a file (the shared fixture)
def test_a_zeroed_head_fails_on_relative_error_and_top1(trained, zero_head_file, shapes):
    report = verify_tflite(zero_head_file, trained, shapes[0][96:112], quantize="none", runs=1)
    assert report.status == "FAILED" and report.near_tie_fraction == 0.0
    assert report.relative_error["predictions"] == pytest.approx(1.0, abs=1e-4)
    assert report.max_relative_error == default_bounds("tflite", "none").max_relative_error
    assert any("relative error 1 exceeds the bound" in f for f in report.failures)
    assert any("top-1 agreement" in f for f in report.failures)


@pytest.mark.slow  # converts a file (the shared fixture)
def test_where_near_ties_could_decide_top1_does_not_judge_and_the_relative_error_decides(
    trained, zero_head_file, shapes
):
    images = shapes[0][96:112]
    # a relative error of 0.8 can flip any top-1 of 6 classes: every image is a near tie
    report = verify_tflite(zero_head_file, trained, images, quantize="none", runs=1, tolerance=0.8)
    assert report.near_tie_fraction == 1.0 and "cannot judge" in report.inconclusive
    assert report.status == "FAILED" and report.relative_error["predictions"] == pytest.approx(1.0, abs=1e-4)
    assert not any("top-1" in f for f in report.failures)  # top-1 did not judge
    loose = verify_tflite(zero_head_file, trained, images, quantize="none", runs=1, tolerance=2.0)
    assert loose.status == "INCONCLUSIVE" and loose.ok
    assert "INCONCLUSIVE: top-1 agreement cannot judge" in format_report(loose)


@pytest.fixture(scope="module")
def trained_file(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "trained.keras"
    trained.save(path)
    return path


def _export(capsys, *argv):
    code = main(["export", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow  # converts a file (the shared fixture)
def test_cli_a_broken_conversion_fails_exits_1_and_writes_nothing(
    trained_file, zero_head_file, tmp_path, monkeypatch, capsys
):
    broken = zero_head_file.read_bytes()
    monkeypatch.setattr(tflite_module, "_flatbuffer", lambda *args, **kwargs: broken)
    output = tmp_path / "m.tflite"
    code, out, err = _export(capsys, trained_file, "--image-size", SIZE, "--runs", 1, "--output", output)
    assert code == 1, out + err
    assert "status            FAILED" in out and "(bound 0.0001)" in out
    assert "FAILURE: output 'predictions': relative error 1 exceeds the bound 0.0001" in out
    assert "verification failed, nothing written" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow  # two exports
def test_cli_num_verify_is_honoured_without_verify_images(trained_file, tmp_path, capsys):
    for fmt, output in (("saved_model", tmp_path / "served"), ("tflite", tmp_path / "m.tflite")):
        argv = ["--format", fmt, "--image-size", SIZE, "--num-verify", 5, "--runs", 1, "--output", output]
        code, out, err = _export(capsys, trained_file, *argv)
        assert code == 0, out + err
        assert "samples           5 images of 64x64" in out and "status            OK" in out
        report = json.loads(output.with_name(f"{output.stem}.report.json").read_text())
        data = report.get("verification", report)
        assert data["sample_shape"][0] == 5 and data["status"] == "OK"
        assert data["max_relative_error"] == 1e-4 and data["relative_error_overall"] < 1e-4


def _png_folder(folder, pixels):
    folder.mkdir()
    for index, image in enumerate(pixels):
        tf.io.write_file(str(folder / f"{index}.png"), tf.io.encode_png(image))
    return folder


def test_cli_refuses_a_flat_calibration_set_before_any_work(trained_file, tmp_path, capsys):
    black = _png_folder(tmp_path / "black", np.zeros((3, SIZE, SIZE, 3), np.uint8))
    output = tmp_path / "out" / "m.tflite"
    output.parent.mkdir()
    argv = ["--quantize", "int8", "--representative", black, "--image-size", SIZE, "--output", output]
    code, _, err = _export(capsys, trained_file, *argv)
    assert code == 2 and "calibration image(s) are all flat" in err
    assert os.listdir(output.parent) == []


@pytest.mark.slow  # int8 calibration
def test_cli_a_scaled_head_calibrated_on_dark_images_fails(trained, tmp_path, capsys):
    model_file = tmp_path / "scaled.keras"
    _with_head(trained, 20.0).save(model_file)  # logits scaled up: nearly one-hot probabilities
    dark = np.random.default_rng(1).integers(0, 12, (8, SIZE, SIZE, 3)).astype(np.uint8)
    folder = _png_folder(tmp_path / "dark", dark)  # not flat, but nothing like a photo
    output = tmp_path / "out" / "m.tflite"
    output.parent.mkdir()
    argv = ["--quantize", "int8", "--representative", folder, "--image-size", SIZE, "--fixed-shape"]
    code, out, err = _export(capsys, model_file, *argv, "--runs", 1, "--output", output)
    assert code == 1, out + err
    assert "status            FAILED" in out and "relative error" in out
    assert "samples           16 images of 64x64" in out  # generated: the 8 images all calibrate
    assert os.listdir(output.parent) == []


@pytest.mark.slow  # int8 calibration
def test_int8_full_of_a_1000_class_classifier_outputs_zeros_and_fails(shapes, tmp_path):
    keras.utils.set_random_seed(0)
    model = PVT_V2(tiny_config(num_classes=1000))  # softmax of ~1e-3 each: int8 output rounds to 0
    output = tmp_path / "full.tflite"
    with pytest.raises(VerificationError, match="relative error") as caught:
        convert_to_tflite(
            model,
            output,
            quantize="int8-full",
            representative_data=shapes[0][:48],
            image_size=SIZE,
            batch_size=1,
            runs=1,
        )
    report = caught.value.report
    assert report.status == "FAILED" and report.relative_error["predictions"] > 1
    assert "cannot judge" in report.inconclusive  # random weights: 1000 near-equal scores
    assert report.sample_shape[0] == 16  # 8 held out (images 32-39) and 8 generated
    assert os.listdir(tmp_path) == []
