"""OpenVINO export: a verified IR pair, what runs natively, reload, overwrite rules and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

from keras_pvt import PVT_V2
from keras_pvt._requires import OpenVINORequiredError
from keras_pvt._safe_write import OutputRefusedError
from keras_pvt.cli import main
from keras_pvt.export import VerificationError, export_openvino, format_report
from keras_pvt.export.openvino import weights_path
from keras_pvt.export.openvino_run import OpenVINORunner
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.segmentation import SemanticFPN

from helpers import tiny_config

openvino = pytest.importorskip(
    "openvino", reason="OpenVINO export needs the `openvino` package: pip install 'keras-pvt[openvino]'"
)

SIZE = (64, 48)


def _images(count, height=SIZE[0], width=SIZE[1], seed=0):
    return np.random.default_rng(seed).standard_normal((count, height, width, 3)).astype(np.float32)


def _layer_norms(model) -> int:
    return sum(isinstance(layer, LayerNorm) for layer in model._flatten_layers())


@pytest.fixture(scope="module")
def model():
    return PVT_V2(tiny_config(), weights=None)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """One dynamic-shape float32 export of the tiny classifier, shared by the tests below."""
    path = tmp_path_factory.mktemp("openvino") / "tiny.xml"
    return export_openvino(model, path, verify_images=_images(2), runs=2)


@pytest.mark.slow
def test_export_writes_a_verified_ir_pair(exported, model):
    report = exported.verification
    assert report.ok and report.format == "openvino" and report.quantize == "float32"
    assert os.path.isfile(exported.path) and os.path.isfile(exported.weights_path)
    assert exported.weights_path == str(weights_path(exported.path))
    assert exported.input_shape == [None, None, None, 3] and report.input_shape == [None, None, None, 3]
    assert report.max_abs_diff["predictions"] <= 1e-4 and report.top1_agreement == 1.0
    assert report.size_bytes == exported.size_bytes > 0
    # The OpenVINO rewrite's point: every LayerNorm becomes one MVN that the CPU plugin runs natively.
    assert exported.kernel_table == "openvino_rows_layer_norm"
    assert exported.model_ops["MVN"] == _layer_norms(model) == report.op_histogram["MVN"]
    assert exported.model_ops["Gelu"] >= 4 and "ScaledDotProductAttention" in exported.model_ops
    assert "openvino" in format_report(report)


@pytest.mark.slow
def test_reloaded_ir_matches_keras_at_an_odd_size(exported, model):
    core = openvino.Core()
    ir = core.read_model(exported.path)
    assert ir.inputs[0].get_any_name() == "images" and ir.outputs[0].get_any_name() == "predictions"
    compiled = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    images = _images(3, 37, 53, seed=1)
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(compiled(images)[0], expected, rtol=0, atol=1e-5)
    # OpenVINO drops the graph's run-time size assertion; our runner checks the size the IR records.
    with pytest.raises(ValueError, match="too small"):
        OpenVINORunner(exported.path, threads=1)(_images(1, 8, 8))


def test_refuses_what_is_not_its_own_ir(tmp_path, model):
    user_xml = tmp_path / "user.xml"
    user_xml.write_text("<?xml version='1.0'?><net name='theirs'></net>")
    with pytest.raises(OutputRefusedError, match=r"not a previous OpenVINO IR \.xml"):
        export_openvino(model, user_xml, overwrite=True)
    (tmp_path / "fresh.bin").write_bytes(b"a user's weights")  # no .xml of ours beside it
    with pytest.raises(OutputRefusedError, match=r"not a previous OpenVINO IR \.bin"):
        export_openvino(model, tmp_path / "fresh.xml", overwrite=True)
    with pytest.raises(ValueError, match=r"ending in \.xml"):
        export_openvino(model, tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="Unknown OpenVINO precision"):
        export_openvino(model, tmp_path / "m.xml", precision="int8")
    assert (
        user_xml.read_text().endswith("</net>")
        and (tmp_path / "fresh.bin").read_bytes() == b"a user's weights"
    )
    assert not (tmp_path / "fresh.xml").exists() and not (tmp_path / "m.xml").exists()


@pytest.mark.slow
def test_own_ir_needs_overwrite_and_a_failed_verification_keeps_it(exported, model, tmp_path):
    xml = tmp_path / "ours.xml"
    shutil.copy(exported.path, xml)
    shutil.copy(exported.weights_path, weights_path(xml))
    before = xml.read_bytes(), weights_path(xml).read_bytes()
    with pytest.raises(OutputRefusedError, match="pass --overwrite"):
        export_openvino(model, xml)
    with pytest.raises(VerificationError, match="top-1 agreement"):
        export_openvino(model, xml, image_size=SIZE, min_top1=1.5, runs=1, overwrite=True)
    assert (xml.read_bytes(), weights_path(xml).read_bytes()) == before
    assert sorted(os.listdir(tmp_path)) == ["ours.bin", "ours.xml"]  # no staging leftovers


@pytest.mark.slow
def test_cli_replaces_its_own_ir_with_float16_weights(exported, model, tmp_path, capsys):
    model_file = tmp_path / "tiny.keras"
    model.save(model_file)
    output = tmp_path / "m.xml"
    shutil.copy(exported.path, output)
    shutil.copy(exported.weights_path, weights_path(output))
    float32_bytes = weights_path(output).stat().st_size
    argv = ["export", str(model_file), "--format", "openvino", "--output", str(output), "--runs", "1"]
    rc = main([*argv, "--openvino-precision", "float16", "--image-size", "64x48", "--overwrite"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "status            OK" in printed
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["precision"] == "float16" and report["verification"]["ok"]
    assert report["input_shape"] == [None, 64, 48, 3]
    assert weights_path(output).stat().st_size < 0.6 * float32_bytes  # float16 weights
    assert openvino.Core().read_model(output).inputs[0].get_partial_shape().is_static is False


@pytest.mark.slow
def test_segmenter_exports_with_per_pixel_verification(tmp_path):
    # A fixed size here: a dynamic-size segmenter converts too (the classifier above is dynamic),
    # but takes twice as long.
    segmenter = SemanticFPN(tiny_config(embed_dims=(8, 16, 24, 32)), 4, fpn_channels=16, head_channels=8)
    result = export_openvino(
        segmenter, tmp_path / "seg.xml", image_size=SIZE, verify_images=_images(2), runs=1
    )
    report = result.verification
    assert report.ok and report.dense is not None and report.dense.pixel_agreement >= 0.999
    assert report.output_names == ["logits"] and report.max_abs_diff["logits"] <= 1e-4


def test_without_openvino_the_error_names_the_extra(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    with pytest.raises(OpenVINORequiredError, match=r'pip install "keras-pvt\[openvino\]"'):
        export_openvino(model, tmp_path / "m.xml", image_size=SIZE)
    assert os.listdir(tmp_path) == []
