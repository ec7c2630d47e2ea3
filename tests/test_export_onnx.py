"""ONNX export: a file verified on ONNX Runtime, a broken file FAILED, the safe-write rules and the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_pvt import PVT_V2
from keras_pvt._safe_write import OutputRefusedError
from keras_pvt.cli import main
from keras_pvt.export import VerificationError, export_onnx, format_report, verify_onnx
from keras_pvt.export.onnx_run import ONNXRunner

from helpers import tiny_config

onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'keras-pvt[onnx]'")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

SIZE = (64, 48)


def _images(count, height=SIZE[0], width=SIZE[1], seed=0):
    return np.random.default_rng(seed).standard_normal((count, height, width, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return PVT_V2(tiny_config(), weights=None)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """One dynamic-shape export of the tiny classifier, shared by the tests below."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return export_onnx(model, path, verify_images=_images(3), runs=2, threads=1)


def test_export_writes_a_verified_file_with_our_names(exported, model):
    report = exported.verification
    assert report.status == "OK" and report.format == "onnx" and report.quantize == "float32"
    assert report.max_relative_error == 1e-4 and report.min_top1 == 0.999  # the float32 defaults
    assert exported.input_shape == [None, None, None, 3] and report.input_shape == [None, None, None, 3]
    assert report.output_names == ["predictions"] and report.top1_agreement == 1.0
    assert report.size_bytes == exported.size_bytes == os.path.getsize(exported.path)
    assert report.op_histogram.get("Conv", 0) >= 4  # the patch embeddings
    assert "onnx" in format_report(report)
    session = onnxruntime.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["predictions"]
    images = _images(2, 37, 53, seed=1)  # another size: height and width stay dynamic
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(session.run(None, {"images": images})[0], expected, rtol=0, atol=1e-5)
    # The file records the model's smallest size; our runner refuses smaller images in one line.
    with pytest.raises(ValueError, match="too small"):
        ONNXRunner(exported.path, threads=1)(_images(1, 8, 8))


def _broken(source, target, noise):
    """A copy of `source` whose largest weight tensor is zeroed (`noise` None) or has seeded noise of
    `noise` x its standard deviation added (a damaged conversion)."""
    from onnx import numpy_helper

    proto = onnx.load(str(source))
    largest = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(largest)
    if noise is None:
        values = np.zeros_like(values)
    else:
        values = values + noise * values.std() * np.random.default_rng(0).standard_normal(values.shape)
    largest.CopyFrom(numpy_helper.from_array(values.astype(np.float32), largest.name))
    onnx.save(proto, str(target))
    return target


@pytest.mark.parametrize("noise", [None, 0.05])
def test_a_broken_file_fails_verification(exported, model, tmp_path, noise):
    broken = _broken(exported.path, tmp_path / "broken.onnx", noise)
    report = verify_onnx(broken, model, _images(3), runs=1, threads=1)
    assert report.status == "FAILED" and not report.ok
    assert any("relative error" in failure for failure in report.failures)
    healthy = verify_onnx(exported.path, model, _images(3), runs=1, threads=1)
    assert healthy.status == "OK"  # the same check on the intact file


def test_failed_verification_writes_nothing(model, tmp_path):
    path = tmp_path / "strict.onnx"
    with pytest.raises(VerificationError) as failed:
        export_onnx(model, path, verify_images=_images(2), runs=1, threads=1, tolerance=0.0)
    assert failed.value.report.status == "FAILED"
    assert os.listdir(tmp_path) == []  # no file, no staging leftovers


def test_only_a_previous_export_is_replaced(exported, model, tmp_path):
    user_file = tmp_path / "mine.onnx"
    user_file.write_bytes(b"\x08\x07 some other ONNX file")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (user_file, empty):
        with pytest.raises(OutputRefusedError, match="never replaces"):
            export_onnx(model, path, verify=False, overwrite=True)
    assert user_file.read_bytes() == b"\x08\x07 some other ONNX file" and empty.read_bytes() == b""
    with pytest.raises(ValueError, match=r"NAME\.onnx"):
        export_onnx(model, tmp_path / "model.bin", verify=False)
    previous = tmp_path / "previous.onnx"
    previous.write_bytes(Path(exported.path).read_bytes())
    with pytest.raises(OutputRefusedError, match="--overwrite"):
        export_onnx(model, previous, verify=False)
    result = export_onnx(model, previous, verify=False, overwrite=True, image_size=SIZE, batch_size=1)
    assert result.verification is None and ONNXRunner(previous).input_shape == [1, *SIZE, 3]


def test_cli_exports_onnx_with_a_report(model, tmp_path, capsys):
    model_file = tmp_path / "tiny.keras"
    model.save(model_file)
    output = tmp_path / "m.onnx"
    argv = ["export", str(model_file), "--format", "onnx", "--output", str(output)]
    rc = main([*argv, "--num-verify", "2", "--runs", "1", "--threads", "1", "--image-size", "64"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "status            OK" in printed and output.is_file()
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["verification"]["status"] == "OK" and report["opset"] == 17
    assert report["input_shape"] == [None, 64, 64, 3]
    tflite = ["export", str(model_file), "--format", "tflite", "--output", str(tmp_path / "t.tflite")]
    assert main([*tflite, "--onnx-opset", "17"]) == 2  # an ONNX flag with another format
    assert main(argv) == 2  # the file exists now: refused without --overwrite


def test_a_segmenter_is_verified_per_pixel(tmp_path):
    from keras_pvt.segmentation import SemanticFPN

    segmenter = SemanticFPN(tiny_config(embed_dims=(8, 16, 24, 32)), 5, fpn_channels=16, head_channels=8)
    masks = np.random.default_rng(2).integers(0, 5, (2, 64, 64))
    result = export_onnx(
        segmenter,
        tmp_path / "seg.onnx",
        verify_images=_images(2, 64, 64),
        verify_masks=masks,
        runs=1,
        threads=1,
    )
    report = result.verification
    assert report.status == "OK" and report.dense is not None and report.top1_agreement is None
    assert report.dense.pixel_agreement >= 0.999 and report.dense.keras_mean_iou is not None


def test_without_onnxruntime_the_error_names_the_extra(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "keras-pvt\[onnx\]"'):
        export_onnx(model, tmp_path / "m.onnx", image_size=SIZE)
    model_file = tmp_path / "tiny.keras"
    model.save(model_file)
    assert main(["export", str(model_file), "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 2
    assert 'pip install "keras-pvt[onnx]"' in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["tiny.keras"]
