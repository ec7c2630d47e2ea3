"""`_safe_write` on its own: an empty file a user made is never replaced, an empty folder is used,
and a previous output of the same kind is replaced only when asked."""

from __future__ import annotations

import json
import os

import pytest

from keras_pvt import _safe_write as safe
from keras_pvt._safe_write import OutputRefusedError, atomic_write, check_output

FILE_KINDS = [
    safe.TFLITE,
    safe.ONNX,
    safe.OPENVINO_XML,
    safe.OPENVINO_BIN,
    safe.KERAS_MODEL,
    safe.KERAS_WEIGHTS,
    safe.EXPORT_REPORT,
]
FOLDER_KINDS = [safe.SAVED_MODEL, safe.PRESET]


@pytest.mark.all_backends
@pytest.mark.parametrize("kind", FILE_KINDS, ids=lambda k: k.name)
def test_an_empty_file_is_never_replaced(kind, tmp_path):
    empty = tmp_path / kind.example
    empty.touch()  # a placeholder the user made: keras-pvt did not write it
    for overwrite in (False, True):
        with pytest.raises(OutputRefusedError, match="not a previous"):
            check_output(empty, kind, overwrite=overwrite)
        with pytest.raises(OutputRefusedError):
            atomic_write(empty, lambda stage: stage.write_bytes(b"new"), kind, overwrite=overwrite)
    assert empty.read_bytes() == b"" and os.listdir(tmp_path) == [kind.example]  # no leftovers


@pytest.mark.all_backends
@pytest.mark.parametrize("kind", FOLDER_KINDS, ids=lambda k: k.name)
def test_an_empty_folder_is_used(kind, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    assert check_output(folder, kind) is True  # it holds nothing: used without --overwrite


@pytest.mark.all_backends
def test_a_previous_output_is_replaced_only_when_asked(tmp_path):
    report = tmp_path / "m.report.json"
    report.write_text(json.dumps({"path": "m.tflite", "input_shape": [1, 8, 8, 3]}))
    write = lambda stage: stage.write_text(json.dumps({"path": "new", "input_shape": []}))  # noqa: E731
    with pytest.raises(OutputRefusedError, match="--overwrite"):
        atomic_write(report, write, safe.EXPORT_REPORT)
    atomic_write(report, write, safe.EXPORT_REPORT, overwrite=True)
    assert json.loads(report.read_text())["path"] == "new"


@pytest.mark.all_backends
def test_an_onnx_file_is_ours_only_with_the_marker(tmp_path):
    ours = tmp_path / "ours.onnx"
    ours.write_bytes(b"\x08\x08\x12\x07tf2onnx2\x0e" + safe.ONNX_MARKER + b"rest of the model")
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"\x08\x08\x12\x07pytorch rest of the model")
    assert safe.ONNX.recognise(ours) and not safe.ONNX.recognise(theirs)
    assert check_output(ours, safe.ONNX, overwrite=True) is True
    with pytest.raises(OutputRefusedError, match="not a previous ONNX file"):
        check_output(theirs, safe.ONNX, overwrite=True)
