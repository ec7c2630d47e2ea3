"""TFLite conversion: builtin ops only, every quantization mode, verification, dynamic resizing."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2, PVTV2Config
from keras_pvt.export import (
    TFLiteRunner,
    UnsupportedOpsError,
    convert_to_tflite,
    load_images,
    op_histogram,
    verify_tflite,
)

pytest.importorskip("ai_edge_litert")
from ai_edge_litert.interpreter import Interpreter

SMALL = PVTV2Config(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), num_classes=10)
SIZE = 64


@pytest.fixture(scope="module")
def model():
    return PVT_V2(SMALL)


@pytest.fixture(scope="module")
def fp32(model, tmp_path_factory):
    """The default conversion: float32, dynamic batch/height/width, verified."""
    path = tmp_path_factory.mktemp("fp32") / "model.tflite"
    images = _images((2, SIZE, SIZE, 3))
    return convert_to_tflite(model, path, verify_images=images, runs=2)


@pytest.fixture(scope="module")
def calibration():
    return _images((6, SIZE, SIZE, 3), seed=3)


def _images(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _builtin_only(path) -> None:
    histogram = op_histogram(str(path))
    assert not [op for op in histogram if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")]
    with open(path, "rb") as handle:
        assert b"Flex" not in handle.read()


def test_fp32_matches_keras_with_builtin_ops_only(model, fp32):
    report = fp32.verification
    assert report.ok and report.format == "tflite" and report.quantize == "none"
    assert report.input_shape == [None, None, None, 3]
    assert report.max_abs_diff_overall <= 1e-4 and report.top1_agreement == 1.0
    assert report.size_bytes == os.path.getsize(fp32.path) > 100_000
    assert report.latency_ms_median > 0 and report.op_histogram["FULLY_CONNECTED"] > 0
    _builtin_only(fp32.path)


def test_dynamic_file_resizes_with_resize_tensor_input(model, fp32):
    interpreter = Interpreter(model_path=fp32.path, num_threads=1)
    (detail,) = interpreter.get_input_details()
    assert list(detail["shape_signature"]) == [-1, -1, -1, 3]
    for shape in ((2, SIZE, SIZE, 3), (1, 96, 80, 3)):
        interpreter.resize_tensor_input(detail["index"], shape, strict=True)
        interpreter.allocate_tensors()
        x = _images(shape, seed=sum(shape))
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        assert y.shape == (shape[0], 10)
        np.testing.assert_allclose(y, model(x).numpy(), atol=1e-4)


def test_fixed_shape_lets_xnnpack_take_the_whole_graph(model, fp32, tmp_path):
    result = convert_to_tflite(model, tmp_path / "fixed.tflite", image_size=SIZE, batch_size=1, runs=2)
    report = result.verification
    assert report.ok and report.input_shape == [1, SIZE, SIZE, 3]
    assert report.max_abs_diff_overall <= 1e-4
    assert report.delegate_partitions == 1 and report.delegated_whole_graph
    assert fp32.verification.delegate_partitions > 1 and not fp32.verification.delegated_whole_graph
    # a fixed batch of 1 still verifies several images, one invoke each
    runner = TFLiteRunner(result.path)
    x = _images((3, SIZE, SIZE, 3), seed=5)
    np.testing.assert_allclose(runner(x)["predictions"], model(x).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="fixed height 64"):
        runner(_images((1, 96, SIZE, 3)))


@pytest.mark.parametrize("quantize", ["float16", "dynamic"])
@pytest.mark.slow
def test_weight_quantization_runs_and_is_verified(model, fp32, tmp_path, quantize):
    result = convert_to_tflite(
        model, tmp_path / f"{quantize}.tflite", quantize=quantize, image_size=SIZE, runs=2
    )
    report = result.verification
    assert report.ok and report.quantize == quantize
    assert report.top1_agreement is not None and np.isfinite(report.max_abs_diff_overall)
    assert report.max_abs_diff_overall < 0.05
    assert result.size_bytes < 0.7 * fp32.size_bytes
    _builtin_only(result.path)


@pytest.mark.slow
def test_int8_from_a_dataset_with_float_io(model, fp32, calibration, tmp_path):
    dataset = tf.data.Dataset.from_tensor_slices({"image": calibration, "label": np.zeros(6)})
    result = convert_to_tflite(
        model,
        tmp_path / "int8.tflite",
        quantize="int8",
        representative_data=dataset.batch(2),
        image_size=SIZE,
        batch_size=1,
        runs=2,
    )
    report = result.verification
    assert report.ok and result.calibration_images == 6 and report.input_dtype == "float32"
    assert report.top1_agreement is not None and report.max_abs_diff_overall < 0.1
    assert result.size_bytes < 0.6 * fp32.size_bytes
    assert "QUANTIZE" in report.op_histogram
    _builtin_only(result.path)


@pytest.mark.slow
def test_strict_int8_full_from_a_folder_with_int8_io(model, tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    pixels = np.random.default_rng(4).integers(0, 256, (4, 80, 72, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(image))
    result = convert_to_tflite(
        model,
        tmp_path / "int8io.tflite",
        quantize="int8-full",
        representative_data=str(folder),
        int8_io=True,
        strict_int8=True,
        image_size=SIZE,
        batch_size=1,
        runs=2,
    )
    report = result.verification
    assert report.ok and report.input_dtype == "int8" and result.int8_io
    interpreter = Interpreter(model_path=result.path)
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    # the 4 images all calibrate (num_calibration 32): verified on 16 generated ones, not on them
    assert report.sample_shape == [16, SIZE, SIZE, 3] and result.calibration_images == 4
    # keras_pvt's LayerNorm has no NEG op, so the whole graph runs in int8.
    assert not report.float_ops and not result.float_ops
    assert result.quantize == "int8-full" and result.int8_ops["FULLY_CONNECTED"] > 0


def test_strict_int8_names_the_ops_left_in_float(calibration, tmp_path):
    # Keras' own LayerNormalization computes `-mean * inv + beta`: NEG has no int8 kernel.
    inputs = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.LayerNormalization()(x)
    plain = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    target = tmp_path / "strict.tflite"
    with pytest.raises(UnsupportedOpsError) as caught:
        convert_to_tflite(
            plain,
            target,
            quantize="int8-full",
            representative_data=calibration,
            strict_int8=True,
            image_size=SIZE,
            batch_size=1,
            runs=1,
        )
    assert "NEG" in caught.value.ops
    assert "NEG x" in str(caught.value)  # each op named with its count
    assert not target.exists()


def test_unsupported_op_fails_naming_it_and_writes_nothing(tmp_path):
    inputs = keras.Input((None, None, 3), name="images")
    x = keras.layers.Lambda(lambda t: keras.ops.erfinv(keras.ops.tanh(t)))(inputs)
    odd = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(UnsupportedOpsError, match="Erfinv") as caught:
        convert_to_tflite(odd, tmp_path / "odd.tflite")
    assert caught.value.ops == ["Erfinv"]
    assert os.listdir(tmp_path) == []


def test_verification_catches_uninitialised_variables(model, tmp_path):
    """The known trap: from_concrete_functions keeps VAR_HANDLE ops and the outputs are NaN."""
    spec = tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = tmp_path / "trap.tflite"
    path.write_bytes(converter.convert())
    report = verify_tflite(path, model, _images((1, SIZE, SIZE, 3)), runs=1)
    assert not report.ok
    assert any("non-finite" in f for f in report.failures) or any("VAR_HANDLE" in f for f in report.failures)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantize": "int4"}, "Unknown quantization mode 'int4'"),
        ({"quantize": "int8"}, "needs representative data"),
        ({"quantize": "int8-full"}, "needs representative data"),
        ({"int8_io": True}, r"int8_io \(--int8-io\) needs full integer quantization"),
        ({"strict_int8": True}, r"quantize='int8-full' \(--quantize int8-full\)"),
        ({"image_size": (64,)}, "image_size"),
    ],
)
def test_bad_arguments_fail_before_any_work(model, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        convert_to_tflite(model, tmp_path / "m.tflite", **kwargs)
    assert os.listdir(tmp_path) == []


def test_load_images_sources(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    floats = load_images(pixels, image_size=(32, 32))
    assert floats.shape == (3, 32, 32, 3) and floats.dtype == np.float32
    assert abs(float(floats.mean())) < 1.0  # ImageNet-normalised, not raw pixels
    ready = _images((2, 32, 32, 3))
    np.testing.assert_array_equal(load_images(ready), ready)  # float = already preprocessed
    dataset = tf.data.Dataset.from_tensor_slices((pixels, np.arange(3)))
    np.testing.assert_allclose(load_images(dataset, limit=2), load_images(pixels[:2]), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_images(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="No images"):
        load_images(str(tmp_path))
    with pytest.raises(ValueError, match="not available offline"):
        load_images("tfds:keras_pvt_no_such_dataset:train")
    with pytest.raises(ValueError, match="tfds:NAME:SPLIT"):
        load_images("tfds:mnist")


def test_load_images_from_a_prepared_tfds_split(tmp_path):
    data = pytest.importorskip("keras_pvt.data")
    import tensorflow_datasets as tfds

    name = f"{data.DATASET_NAME}/32px_6_2"
    tfds.builder(name, data_dir=str(tmp_path)).download_and_prepare()  # rendered locally
    images = load_images(f"tfds:{name}:train", image_size=(40, 40), limit=4, data_dir=str(tmp_path))
    assert images.shape == (4, 40, 40, 3) and images.dtype == np.float32
    assert -3.0 < float(images.min()) < float(images.max()) < 3.0  # ImageNet-normalised
