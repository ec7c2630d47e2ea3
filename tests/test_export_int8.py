"""Mixed int8 TFLite ("int8"): the op types XNNPACK has no int8 path for stay float, the rest int8.

The full-integer mode ("int8-full", with strict_int8 / int8_io) is tested in test_export_tflite.py.
"""

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
from keras_pvt.export import TFLiteRunner, convert_to_tflite, format_report
from keras_pvt.export.int8_mixed import FLOAT_OPS
from keras_pvt.export.tflite import TFLiteOptions
from keras_pvt.images import preprocess_input

from helpers import tiny_config

pytest.importorskip("ai_edge_litert")

SIZE = 64
CLASSES = 6
INT8_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.fixture(scope="module")
def shapes():
    """120 rendered shape images (model-ready float32) and their labels: 96 to train, 24 held out."""
    pairs = [render_example(SIZE, 7, index) for index in range(120)]
    pixels = np.stack([image for image, _ in pairs]).astype(np.float32)
    labels = np.array([label for _, label in pairs])
    return np.asarray(preprocess_input(pixels), np.float32), labels


@pytest.fixture(scope="module")
def trained(shapes):
    """A seeded tiny PVT-v2 whose classifier is fitted to the shapes (ridge regression on the
    pooled features to one-hot labels): logits with separated classes, in one forward pass."""
    images, labels = shapes
    keras.utils.set_random_seed(0)
    model = PVT_V2(tiny_config(num_classes=CLASSES), classifier_activation=None)
    pooled = keras.Model(model.input, model.get_layer("avg_pool").output)
    features = np.asarray(keras.ops.convert_to_numpy(pooled(images[:96])), np.float64)
    design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    targets = 10.0 * (np.eye(CLASSES)[labels[:96]] - 1.0 / CLASSES)
    gram = design.T @ design
    gram += 0.1 * np.trace(gram) / len(gram) * np.eye(len(gram))  # ridge: moderate weights
    solution = np.linalg.solve(gram, design.T @ targets)
    model.get_layer("head").set_weights([solution[:-1].astype(np.float32), solution[-1].astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def mixed(trained, shapes, tmp_path_factory):
    images, _ = shapes
    path = tmp_path_factory.mktemp("mixed") / "mixed.tflite"
    return convert_to_tflite(
        trained,
        path,
        quantize="int8",
        representative_data=images[:16],
        image_size=SIZE,
        batch_size=1,
        verify_images=images[96:],
        threads=1,
        runs=2,
    )


@pytest.mark.slow
def test_mixed_int8_keeps_the_ops_without_xnnpack_int8_kernels_float(mixed):
    histogram = mixed.verification.op_histogram
    present = {name for name in FLOAT_OPS if name in histogram}
    # every op type of the recipe occurs in a PVT-v2, and every instance of each is float
    assert present == set(FLOAT_OPS)
    assert {name: mixed.float_ops.get(name) for name in present} == {n: histogram[n] for n in present}
    for name in INT8_OPS:  # the convolutions and dense layers, all of them int8
        assert mixed.int8_ops.get(name) == histogram[name] > 0 and name not in mixed.float_ops
    assert "QUANTIZE" in histogram and "DEQUANTIZE" in histogram
    # one XNNPACK partition takes the whole graph: no op falls back to LiteRT's reference kernels
    assert mixed.verification.delegate_partitions == 1 and mixed.verification.delegated_whole_graph
    assert mixed.verification.input_dtype == "float32"


@pytest.mark.slow
def test_mixed_int8_agrees_with_keras(mixed, trained, shapes):
    report = mixed.verification
    assert report.ok and report.quantize == "int8" and report.sample_shape == [24, SIZE, SIZE, 3]
    assert report.top1_agreement >= 0.95, report.top1_agreement
    held_out = shapes[0][96:]
    logits = keras.ops.convert_to_numpy(trained(held_out))
    exported = TFLiteRunner(mixed.path)(held_out)["predictions"]
    correlation = np.corrcoef(logits.ravel(), exported.ravel())[0, 1]
    # a seeded backbone's pooled features are nearly collinear and the fitted head amplifies their
    # int8 round-off (0.98 measured; the demo's trained model: 0.9997 on log-probabilities)
    assert correlation >= 0.95, (correlation, report.max_abs_diff, np.ptp(logits))
    # int8 weights: well under the float32 parameters' bytes (graph and float norms included)
    assert mixed.size_bytes < 0.6 * 4 * trained.count_params()


@pytest.mark.slow
def test_the_report_names_the_op_types_left_in_float(mixed):
    printed = format_report(mixed.verification)
    line = next(text for text in printed.splitlines() if text.strip().startswith("float ops"))
    assert "SOFTMAX" in line and "GELU" in line and "FULLY_CONNECTED" not in line
    data = json.loads(json.dumps(mixed.to_dict()))
    assert data["float_ops"]["BATCH_MATMUL"] == mixed.float_ops["BATCH_MATMUL"] > 0
    assert set(INT8_OPS) <= set(data["int8_ops"]) and "QUANTIZE" not in data["float_ops"]


@pytest.mark.parametrize("flag", ["strict_int8", "int8_io"])
def test_mixed_int8_refuses_full_integer_flags_naming_the_fix(flag, tmp_path):
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    with pytest.raises(ValueError, match=rf"{flag} .*quantize='int8-full' \(--quantize int8-full\)"):
        TFLiteOptions(quantize="int8", representative_data=images, **{flag: True})
    with pytest.raises(ValueError, match="int8-full"):
        convert_to_tflite(PVT_V2(tiny_config()), tmp_path / "m.tflite", quantize="int8",
                          representative_data=images, **{flag: True})  # fmt: skip
    with pytest.raises(ValueError, match="int8-full quantization needs representative data"):
        TFLiteOptions(quantize="int8-full")
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    PVT_V2(tiny_config()).save(path)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for index in range(3):
        image, _ = render_example(SIZE, 11, index)
        tf.io.write_file(str(folder / f"{index}.png"), tf.io.encode_png(image))
    return folder


def test_cli_refuses_int8_with_strict_int8(model_file, image_folder, tmp_path, capsys):
    for flag in ("--strict-int8", "--int8-io"):
        argv = [str(model_file), "--quantize", "int8", flag, "--representative", str(image_folder)]
        with pytest.raises(SystemExit) as exited:
            raise SystemExit(main(["export", *argv, "--output", str(tmp_path / "m.tflite")]))
        assert exited.value.code == 2
        assert "--quantize int8-full" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_cli_int8_full_with_strict_int8_and_int8_io(model_file, image_folder, tmp_path, capsys):
    output = tmp_path / "full.tflite"
    rc = main(
        [
            "export", str(model_file),
            "--quantize", "int8-full", "--strict-int8", "--int8-io",
            "--representative", str(image_folder),
            "--image-size", str(SIZE), "--fixed-shape",
            "--threads", "1", "--runs", "1",
            "--output", str(output),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "[int8-full]" in printed and "float ops         none" in printed
    report = json.loads((tmp_path / "full.report.json").read_text())
    assert report["quantize"] == "int8-full" and report["int8_io"] and report["float_ops"] == {}
    assert set(INT8_OPS) <= set(report["int8_ops"]) and report["verification"]["input_dtype"] == "int8"
