"""The RetinaNet post-processing in a TensorFlow graph converts to TFLite with builtin ops only
(NMS as NON_MAX_SUPPRESSION_V4) and gives mmdet's detections there too."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
from _detection_reference import detection_mismatch, expected

from keras_pvt.detection import RetinaNetDetections

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
