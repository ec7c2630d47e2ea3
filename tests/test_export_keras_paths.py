"""Why each export is ours and not Keras' `Model.export`: the file Keras writes differs.

Our SavedModel, OpenVINO and ONNX exports go through the same Keras / TensorFlow machinery as
``Model.export`` (`keras.export.ExportArchive`, `openvino.convert_model`, tf2onnx), traced from the
serving function so every format has the input ``images`` and the model's output names; the TFLite
export also never allows Flex ops, which Keras' LiteRT export enables by default.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2
from keras_pvt.export import UnsupportedOpsError, convert_to_tflite, export_saved_model
from keras_pvt.export.saved_model import input_spec

from helpers import tiny_config


@pytest.fixture(scope="module")
def model():
    return PVT_V2(tiny_config(), weights=None)


def _outputs(folder):
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return sorted(serve.structured_outputs)


def test_saved_model_output_names(model, tmp_path):
    spec = input_spec(model, (32, 32), None)
    model.export(str(tmp_path / "keras"), format="tf_saved_model", input_signature=[spec], verbose=False)
    export_saved_model(model, tmp_path / "ours", image_size=32)
    assert _outputs(tmp_path / "keras") == ["output_0"]
    assert _outputs(tmp_path / "ours") == ["predictions"]  # the model's own output name


def _determinant_model():
    """An NHWC model with an op that has no TFLite builtin kernel (MatrixDeterminant)."""
    images = keras.Input((3, 3, 3))
    return keras.Model(images, keras.layers.Lambda(lambda x: tf.linalg.det(x))(images))


def test_litert_flex_ops(tmp_path):
    model = _determinant_model()
    keras_file = tmp_path / "keras.tflite"
    model.export(str(keras_file), format="litert", verbose=False)
    assert b"FlexMatrixDeterminant" in keras_file.read_bytes()  # Keras let a Flex op in
    with pytest.raises(UnsupportedOpsError, match="MatrixDeterminant"):
        convert_to_tflite(model, tmp_path / "ours.tflite", verify=False)
    assert not (tmp_path / "ours.tflite").exists()


def test_openvino_names_and_marker(model, tmp_path):
    openvino = pytest.importorskip("openvino")
    from keras_pvt._safe_write import OPENVINO_XML
    from keras_pvt.export import export_openvino

    spec = input_spec(model, (32, 32), None)
    keras_xml = tmp_path / "keras.xml"
    model.export(str(keras_xml), format="openvino", input_signature=[spec], verbose=False)
    ours = export_openvino(model, tmp_path / "ours.xml", image_size=32, verify=False)
    core = openvino.Core()
    assert core.read_model(ours.path).outputs[0].get_any_name() == "predictions"
    assert core.read_model(str(keras_xml)).outputs[0].get_any_name() != "predictions"
    # No keras-pvt entry: our exports never replace Keras' IR (nor anyone else's) with --overwrite.
    assert OPENVINO_XML.recognise(tmp_path / "ours.xml") and not OPENVINO_XML.recognise(keras_xml)


def test_onnx_output_names(model, tmp_path):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from keras_pvt.export import export_onnx

    spec = input_spec(model, (32, 32), None)
    model.export(str(tmp_path / "keras.onnx"), format="onnx", input_signature=[spec], verbose=False)
    export_onnx(model, tmp_path / "ours.onnx", image_size=32, verify=False)
    names = {}
    for name in ("keras", "ours"):
        session = onnxruntime.InferenceSession(
            str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        names[name] = [o.name for o in session.get_outputs()]
        image = np.zeros((1, 32, 32, 3), np.float32)
        assert session.run(None, {session.get_inputs()[0].name: image})[0].shape == (1, 10)
    assert names["ours"] == ["predictions"] and names["keras"] != ["predictions"]
