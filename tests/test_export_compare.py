"""The export comparison (`keras_pvt.export.compare`): one export loop and one table writer for
classifiers and segmenters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keras_pvt import PVT_V2
from keras_pvt.export.compare import (
    FormatResult,
    SegmentationFormatResult,
    baseline_scores,
    export_and_compare,
    export_and_compare_segmenter,
    export_formats,
    format_segmentation_table,
    format_table,
)

from helpers import tiny_config


def test_unknown_formats_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    images = np.zeros((2, 32, 32, 3), np.float32)
    output = tmp_path / "out"
    with pytest.raises(ValueError, match=r"Unknown export format\(s\) \['tflite_int4'\]"):
        export_formats(
            None,
            str(output),
            ["tflite_float", "tflite_int4"],
            images,
            images,
            32,
            threads=1,
            runs=1,
            overwrite=False,
        )
    with pytest.raises(ValueError, match=r"\['onnx'\]"):
        export_and_compare_segmenter(
            None, str(output), images, np.zeros((2, 32, 32), np.int32), images, 32, formats=["onnx"]
        )
    assert not output.exists()


def test_tables_show_one_row_per_format() -> None:
    rows = [
        FormatResult("keras", None, 0, 0.5, 1.25, 0.0, 1.0),
        FormatResult("tflite_int8", "m.tflite", 3 * 2**20, 0.25, 0.5, None, None),
    ]
    assert format_table(rows).splitlines() == [
        "| format | size | accuracy | latency (batch 1) | max abs diff vs Keras | top-1 agreement |",
        "|---|---|---|---|---|---|",
        "| keras | - | 50.0% | 1.25 ms | 0 | 100.0% |",
        "| tflite_int8 | 3.00 MiB | 25.0% | 0.50 ms | - | - |",
    ]
    seg = [SegmentationFormatResult("tflite_float", "m.tflite", 2**20, 0.5, 0.75, 0.999, 1e-5, 2.0)]
    assert format_segmentation_table(seg).splitlines()[2] == (
        "| tflite_float | 1.00 MiB | 50.0% | 75.0% | 99.90% | 1e-05 | 2.00 ms |"
    )


def test_the_background_baseline_scores_the_background_class_only() -> None:
    masks = np.array([[[0, 0], [1, 2]]], np.int32)
    iou, accuracy = baseline_scores(masks, 3, ignore_label=None)
    assert accuracy == pytest.approx(0.5) and iou == pytest.approx(0.5 / 3)


@pytest.mark.slow
def test_a_classifier_comparison_measures_every_format(tmp_path: Path) -> None:
    model = PVT_V2(tiny_config(num_classes=3), input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(6, 32, 32, 3)).astype(np.float32)
    predicted = np.argmax(np.asarray(model(images)), axis=-1)
    rows = export_and_compare(
        model, str(tmp_path), images, predicted, images, 32, formats=("tflite_float",), runs=2
    )
    assert [row.format for row in rows] == ["keras", "tflite_float"]
    assert rows[0].accuracy == 1.0 and rows[1].accuracy == 1.0  # the labels are the model's own
    assert rows[1].size_bytes > 0 and rows[1].latency_ms > 0 and rows[1].top1_agreement == 1.0
    assert (tmp_path / "model_none.tflite").is_file()


@pytest.mark.slow
def test_a_segmenter_comparison_measures_every_format(tmp_path: Path) -> None:
    from test_segmentation_model import fixture_segmenter

    model = fixture_segmenter()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 32, 32, 3)).astype(np.float32)
    masks = np.argmax(np.asarray(model(images)), axis=-1).astype(np.int32)  # the model's own labels
    rows = export_and_compare_segmenter(
        model, str(tmp_path), images, masks, images, 32, formats=("tflite_float",), runs=2
    )
    assert [row.format for row in rows] == ["keras", "tflite_float"]
    assert rows[0].pixel_accuracy == 1.0 and rows[0].pixel_agreement == 1.0
    assert rows[1].pixel_agreement > 0.99 and rows[1].size_bytes > 0 and rows[1].latency_ms > 0
    assert rows[0].latency_ms > 0 and rows[0].path is None
