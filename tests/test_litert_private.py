"""Why `_litert_private` still reads the interpreter's op list: what LiteRT's public APIs give instead.

`tf.lite.experimental.Analyzer` lists the file's ops, but only as printed text (it returns None and
says its format is not stable) and before any delegate: it cannot count XNNPACK's partitions.
`CompiledModel.is_fully_accelerated` answers "one partition runs everything" only. The private
listing must agree with both where they overlap.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2
from keras_pvt.export import convert_to_tflite
from keras_pvt.export.verify import TFLiteRunner, op_type_counts

from helpers import tiny_config

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("litert")
    model = PVT_V2(tiny_config(), weights=None)
    convert_to_tflite(model, folder / "fixed.tflite", image_size=64, batch_size=1, verify=False)
    convert_to_tflite(model, folder / "dynamic.tflite", verify=False)
    return {"fixed": str(folder / "fixed.tflite"), "dynamic": str(folder / "dynamic.tflite")}


def _analyzer_ops(path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        returned = tf.lite.experimental.Analyzer.analyze(model_path=path)
    assert returned is None  # a printout, not data
    return re.findall(r"^\s+Op#\d+ ([A-Z0-9_]+)\(", printed.getvalue(), flags=re.MULTILINE)


@pytest.mark.parametrize("name", ["fixed", "dynamic"])
def test_the_analyzer_prints_the_same_ops_but_no_partitions(files, name):
    listed = _analyzer_ops(files[name])
    ours = op_type_counts(files[name])[0]
    assert {op: listed.count(op) for op in set(listed)} == ours
    runner = TFLiteRunner(files[name], threads=1)
    runner(np.zeros((1, 64, 64, 3), np.float32))
    partitions, whole = runner.delegation()
    assert partitions >= 1 and "DELEGATE" not in listed  # only the interpreter sees XNNPACK's share
    assert whole == (name == "fixed")


@pytest.mark.parametrize("name", ["fixed", "dynamic"])
def test_whole_graph_delegation_agrees_with_compiled_model(files, name):
    compiled_model = pytest.importorskip("ai_edge_litert.compiled_model")
    runner = TFLiteRunner(files[name], threads=1)
    runner(np.zeros((1, 64, 64, 3), np.float32))
    fully = compiled_model.CompiledModel.from_file(files[name]).is_fully_accelerated()
    assert runner.delegation()[1] == fully
