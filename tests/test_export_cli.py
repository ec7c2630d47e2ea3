"""`keras-pvt export` end to end on a small model, and its error cases."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2, PVTV2Config
from keras_pvt.cli import main

pytest.importorskip("ai_edge_litert")

SMALL = PVTV2Config(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), num_classes=10)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.keras"
    PVT_V2(SMALL).save(path)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    pixels = np.random.default_rng(0).integers(0, 256, (3, 70, 90, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        tf.io.write_file(str(folder / f"img{i}.jpg"), tf.io.encode_jpeg(image))
    return folder


def test_saved_model_end_to_end(model_file, tmp_path, capsys):
    output = tmp_path / "served"
    rc = main(["export", str(model_file), "--format", "saved_model", "--output", str(output), "--runs", "2"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "status            OK" in printed and "max|diff| predictions" in printed
    report = json.loads((tmp_path / "served.report.json").read_text())
    assert report["ok"] and report["format"] == "saved_model"
    assert report["input_shape"] == [None, None, None, 3] and report["max_abs_diff_overall"] <= 1e-5
    assert tf.saved_model.load(str(output)).signatures["serving_default"] is not None


@pytest.mark.slow
def test_int8_tflite_end_to_end(model_file, image_folder, tmp_path, capsys):
    output = tmp_path / "m.tflite"
    rc = main(
        [
            "export",
            str(model_file),
            "--format", "tflite",
            "--quantize", "int8",
            "--representative", str(image_folder),
            "--image-size", "64",
            "--fixed-shape",
            "--threads", "1",
            "--runs", "2",
            "--output", str(output),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "[int8]" in printed and "top-1 agreement" in printed and "float ops" in printed
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["quantize"] == "int8" and report["calibration_images"] == 3
    verification = report["verification"]
    assert verification["ok"] and verification["input_shape"] == [1, 64, 64, 3]
    assert verification["size_bytes"] == output.stat().st_size and verification["threads"] == 1
    assert verification["op_histogram"] and verification["latency_ms_median"] > 0


def _fails(argv, capsys, code=2):
    with pytest.raises(SystemExit) as exited:
        rc = main(["export", *argv])
        raise SystemExit(rc)
    assert exited.value.code == code
    return capsys.readouterr().err


def test_bad_inputs_exit_non_zero_and_write_nothing(model_file, tmp_path, capsys):
    out = str(tmp_path / "out.tflite")
    not_keras = tmp_path / "notes.keras"
    not_keras.write_text("not a model")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a model")
    cases = [
        ([str(tmp_path / "missing.keras"), "--output", out], "does not exist"),
        ([str(not_keras), "--output", out], "is corrupt"),
        ([str(text_file), "--output", out], "not a Keras model file"),
        ([str(tmp_path), "--output", out], "not a Keras model file"),
        ([str(model_file), "--format", "coreml", "--output", out], "invalid choice: 'coreml'"),
        ([str(model_file), "--format", "onnx", "--output", out], "written as NAME.onnx"),
        ([str(model_file), "--quantize", "int3", "--output", out], "invalid choice: 'int3'"),
        ([str(model_file), "--quantize", "int8", "--output", out], "needs representative data"),
        ([str(model_file), "--quantize", "int8", "--representative", str(tmp_path / "nope"),
          "--output", out], "does not exist"),
        ([str(model_file), "--format", "saved_model", "--quantize", "int8", "--output", out],
         "tflite only"),
        (["--output", out], "either a model file"),
        ([str(model_file), "--output", str(tmp_path / "no" / "such" / "m.tflite")],
         "does not exist"),
    ]  # fmt: skip
    before = sorted(os.listdir(tmp_path))
    for argv, message in cases:
        err = _fails(argv, capsys)
        assert message in err, (argv, err)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, nothing half-written


@pytest.mark.slow
def test_failed_verification_exits_1_and_writes_nothing(model_file, tmp_path, capsys):
    output = tmp_path / "m.tflite"
    argv = [str(model_file), "--image-size", "64", "--min-top1", "1.5", "--runs", "1"]
    err = _fails([*argv, "--output", str(output)], capsys, code=1)
    assert "verification failed, nothing written" in err
    assert os.listdir(tmp_path) == []
