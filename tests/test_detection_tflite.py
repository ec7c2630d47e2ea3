"""The RetinaNet post-processing in a TensorFlow graph converts to TFLite with builtin ops only
(NMS as NON_MAX_SUPPRESSION_V4) and gives mmdet's detections there too."""

from __future__ import annotations

import contextlib
import io
import re

import keras
import numpy as np
import pytest
from _detection_reference import detection_mismatch, expected

from keras_pvt.detection import RetinaNet, RetinaNetDetections, raw_model
from keras_pvt.export import convert_to_tflite

from helpers import tiny_config

pytestmark = pytest.mark.slow


def test_postprocessing_converts_to_builtin_tflite_and_equals_mmdet() -> None:
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    case = "97x131"
    cls_logits, box_deltas = expected(case, "cls_logits"), expected(case, "box_deltas")
    layer = RetinaNetDetections()
    specs = [
        tf.TensorSpec((1, 97, 131, 3), tf.float32),
        tf.TensorSpec(cls_logits.shape, tf.float32),
        tf.TensorSpec(box_deltas.shape, tf.float32),
    ]
    function = tf.function(lambda images, cls, box: layer([images, cls, box]), input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], layer)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):  # every subgraph's ops (the NMS runs inside a WHILE)
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer)
    names = set(re.findall(r"Op#\d+ (\w+)", listing.getvalue()))
    assert {"NON_MAX_SUPPRESSION_V4", "TOPK_V2", "WHILE"} <= names
    assert not any("FLEX" in name.upper() for name in names)
    interpreter = litert.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    out = runner(images=np.zeros((1, 97, 131, 3), np.float32), cls=cls_logits, box=box_deltas)
    assert detection_mismatch(out, case) == []


def tiny_detector(**options):
    keras.utils.set_random_seed(0)
    return RetinaNet(tiny_config(), 3, fpn_channels=8, head_channels=8, **options)


@pytest.mark.parametrize("quantize", ["int8", "int8-full"])
def test_int8_of_a_detector_with_nms_is_refused_before_any_work(tmp_path, quantize) -> None:
    """TensorFlow's calibrator segfaults on the NMS loop: refused with the way out, nothing written."""
    target = tmp_path / "detector.tflite"
    with pytest.raises(ValueError, match=r"raw_model\(model\)"):
        convert_to_tflite(
            tiny_detector(),
            target,
            quantize=quantize,
            representative_data=np.zeros((2, 64, 64, 3)),
            image_size=64,
        )
    assert list(tmp_path.iterdir()) == []


def test_raw_outputs_convert_to_int8_and_the_detector_to_float32(tmp_path) -> None:
    """The ways out the refusal names work: int8 of the raw head outputs, float32 with the NMS."""
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    detector = tiny_detector()
    images = np.random.default_rng(0).normal(size=(4, 64, 64, 3)).astype("float32")
    convert_to_tflite(
        raw_model(detector),
        tmp_path / "raw_int8.tflite",
        quantize="int8",
        representative_data=images,
        image_size=64,
        batch_size=1,
        verify=False,
    )
    assert (tmp_path / "raw_int8.tflite").stat().st_size > 0
    spec = [tf.TensorSpec((1, 64, 64, 3), tf.float32)]
    function = tf.function(lambda x: detector(x, training=False), input_signature=spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], detector)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    got = interpreter.get_signature_runner()(x=images[:1])
    want = keras.tree.map_structure(np.asarray, detector(images[:1], training=False))
    assert sorted(got) == sorted(want)
    np.testing.assert_array_equal(got["num_detections"], want["num_detections"])
